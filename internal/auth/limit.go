package auth

import (
	"sync"
	"time"

	"fieldkit/internal/clock"
)

// Limiter slows down token guessing per client IP: the first Free
// failures cost nothing, each further one locks the IP out for twice as
// long as the last (Base, 2·Base, ... up to Max). A success clears it.
type Limiter struct {
	Free int
	Base time.Duration
	Max  time.Duration
	// Forget drops an IP after this long without failures.
	Forget time.Duration

	clock clock.Clock
	mu    sync.Mutex
	ips   map[string]*strikes
}

type strikes struct {
	n     int
	until time.Time
	last  time.Time
}

// maxTracked bounds the table so that a flood of source addresses cannot
// eat the box's memory; when full, the oldest entries go first.
const maxTracked = 4096

// NewLimiter returns a limiter with the defaults: 5 free failures, then
// 1 s doubling to 5 min.
func NewLimiter(c clock.Clock) *Limiter {
	if c == nil {
		c = clock.Real()
	}
	return &Limiter{Free: 5, Base: time.Second, Max: 5 * time.Minute, Forget: 30 * time.Minute, clock: c, ips: map[string]*strikes{}}
}

// Wait is how long ip must wait before its next try (0: go ahead).
func (l *Limiter) Wait(ip string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.ips[ip]
	if !ok {
		return 0
	}
	if d := s.until.Sub(l.clock.Now()); d > 0 {
		return d
	}
	return 0
}

// Fail records a failed attempt from ip and returns the lock-out it
// earned (0 while free tries remain).
func (l *Limiter) Fail(ip string) time.Duration {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.ips[ip]
	if ok && now.Sub(s.last) > l.Forget {
		s, ok = nil, false
	}
	if !ok {
		l.prune(now)
		s = &strikes{}
		l.ips[ip] = s
	}
	s.n++
	s.last = now
	if s.n <= l.Free {
		return 0
	}
	d := l.Base
	for i := l.Free + 1; i < s.n && d < l.Max; i++ {
		d *= 2
	}
	d = min(d, l.Max)
	s.until = now.Add(d)
	return d
}

// OK clears ip's record after a successful login.
func (l *Limiter) OK(ip string) {
	l.mu.Lock()
	delete(l.ips, ip)
	l.mu.Unlock()
}

func (l *Limiter) prune(now time.Time) {
	if len(l.ips) < maxTracked {
		return
	}
	var oldest string
	var oldestT time.Time
	for ip, s := range l.ips {
		if now.Sub(s.last) > l.Forget && now.After(s.until) {
			delete(l.ips, ip)
			continue
		}
		if oldest == "" || s.last.Before(oldestT) {
			oldest, oldestT = ip, s.last
		}
	}
	if len(l.ips) >= maxTracked {
		delete(l.ips, oldest)
	}
}
