// Package scanner reads barcode scanners: USB scanners in keyboard mode
// from their Linux input device, grabbed so that scans never type into
// anything else, and scanners in serial mode from their serial port.
package scanner
