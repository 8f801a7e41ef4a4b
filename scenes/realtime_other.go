//go:build !linux

package scenes

import (
	"errors"
	"time"
)

func realtimeThread(int) error { return errors.New("real-time threads are only set up on Linux") }

func threadSleep(d time.Duration) { time.Sleep(d) }
