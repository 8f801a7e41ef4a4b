// Package fake is a thermal label printer in software, for tests, the sim
// board and print previews.
//
// It decodes ESC/POS, ZPL and TSPL byte streams into positioned drawing
// operations (text, CODE128, QR, boxes, rasters), renders each finished
// label to a PNG with a built-in bitmap font, and, as a device (Printer),
// answers the languages' status queries from a scripted state while reading
// at the wire speed of its baud rate through a finite input buffer. It is
// reachable over a pseudo-terminal, like a serial or USB printer, and over
// TCP, like a port 9100 network printer, and it can be unplugged and
// plugged back in.
//
// Protocol facts follow the vendors' programming manuals: Epson ESC/POS
// (DLE EOT real-time status, GS ( k QR, GS k CODE128), Zebra ZPL II
// (~HS host status), TSC TSPL2 (ESC !? status byte).
package fake
