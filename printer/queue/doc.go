// Package queue is the durable print-job store: one SQLite file
// (printer.db under the data dir, synchronous=FULL) holding every job,
// its state and its attempts, so that a job accepted is never lost to a
// reboot, an unplugged printer or a killed agent.
//
// A job moves queued → printing → done, or to failed, parked (the
// printer needs paper or a closed cover), uncertain (bytes may have
// reached the printer, but the job was not confirmed) or cancelled. Before
// the first byte of an attempt goes out the store records "write started",
// and after the last "write finished", each durably; Recover uses them on
// start-up to tell a job that certainly did not print (back to queued)
// from one that might have (uncertain, for an operator to reprint or
// drop). Nothing here ever reprints on its own.
package queue
