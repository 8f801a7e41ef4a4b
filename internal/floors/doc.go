// Package floors holds the test that keeps the module's imports running
// one way: internal (shared plumbing) at the bottom, then boards, then
// drivers (chips and devices, no transport), then the parts (scenes,
// printer, sync, web, battery), then the agent and the benchmarks on top.
// A package may import its own floor or lower, never higher, and a part
// never imports another part. It has no code: see floors_test.go.
package floors
