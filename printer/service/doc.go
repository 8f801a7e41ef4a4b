// Package service is the label-printer part of the agent: it owns the
// printers: config section, the durable job queue (printer.db), one worker
// per printer, the HTTP routes and MQTT topics for printing, and the
// pre-show checks.
//
// A worker prints one job at a time: status → encode → write → status.
// Status is read back with short timeouts, and a printer that does not
// answer is unknown or offline, never ready. Paper out or an open cover
// parks the printer's queue and announces it on the bus and on the
// retained <prefix>/printer/<name>/state topic; the worker keeps polling
// and resumes by itself. A job whose bytes may have reached the printer
// but that was not confirmed becomes uncertain and waits for an operator
// to reprint or cancel it: nothing is printed twice behind anyone's back.
package service
