//go:build !linux

package scenes

import "errors"

func realtimeThread(int) error { return errors.New("real-time threads are only set up on Linux") }
