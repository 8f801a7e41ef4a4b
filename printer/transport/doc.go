// Package transport carries bytes to a label printer and status replies
// back: serial (tarm/serial), the USB printer class (/dev/usb/lp0, a plain
// character device) and raw TCP on port 9100.
//
// A Port opens its device lazily and again after every failure, resolving
// the configured path through symlinks each time, so that a printer that
// is unplugged and comes back under a new device name (/dev/ttyUSB1
// instead of /dev/ttyUSB0) is found again through its stable udev link
// (/dev/fieldkit/printer-*, /dev/serial/by-id/...). A read or write error
// such as EIO closes the link and marks the printer unplugged; nothing is
// retried here, because only the caller knows whether resending a job
// could print it twice.
//
// Replies are read by one goroutine per open link into a small buffer, so
// a status query never waits on a blocking read: it clears the buffer,
// writes the request and waits, up to its timeout, for the framing
// function to see a complete reply.
package transport
