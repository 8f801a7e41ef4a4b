// Package floors holds the test that keeps the module's imports running
// one way: internal (shared plumbing) at the bottom, then boards, then
// drivers (chips and devices, no transport), then the parts (scenes,
// printer, sync, web, battery, venue), then the agent and the benchmarks on top.
// A package (and its tests) may import its own floor or lower, never
// higher; a part's code never imports another part (its tests may use
// another part's test doubles). It has no code: see floors_test.go.
package floors
