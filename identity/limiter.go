package identity

import (
	"sync"
	"time"
)

// failureLimiter counts failed sign-ins per key (an account's email, a
// client address) over a sliding window. It lives in one server's memory:
// behind a load balancer each instance counts on its own, so the effective
// limit is at most instances x limit (docs/access.md).
type failureLimiter struct {
	limit  int
	window time.Duration

	mu    sync.Mutex
	fails map[string][]time.Time // per key, oldest first, at most limit entries
	adds  int                    // failures recorded since the last sweep
}

func newFailureLimiter(limit int, window time.Duration) *failureLimiter {
	return &failureLimiter{limit: limit, window: window, fails: map[string][]time.Time{}}
}

// blocked reports how long key must wait before it may try again: 0 when
// fewer than limit failures fall in the window ending at now.
func (l *failureLimiter) blocked(key string, now time.Time) time.Duration {
	if l == nil || l.limit <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ts := l.prune(key, now)
	if len(ts) < l.limit {
		return 0
	}
	return ts[0].Add(l.window).Sub(now)
}

// fail records a failure of key at now.
func (l *failureLimiter) fail(key string, now time.Time) {
	if l == nil || l.limit <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ts := append(l.prune(key, now), now)
	if len(ts) > l.limit {
		// Only the newest limit failures decide when the key is free again.
		ts = append(ts[:0], ts[len(ts)-l.limit:]...)
	}
	l.fails[key] = ts
	// Keys that stop failing would stay forever: sweep every so often, so
	// memory follows the failures of one window, whatever an attacker sprays.
	if l.adds++; l.adds >= 1024 {
		l.adds = 0
		for k := range l.fails {
			l.prune(k, now)
		}
	}
}

// prune drops key's failures older than the window, and the key when none
// is left. The caller holds mu.
func (l *failureLimiter) prune(key string, now time.Time) []time.Time {
	ts := l.fails[key]
	cut := now.Add(-l.window)
	i := 0
	for i < len(ts) && !ts[i].After(cut) {
		i++
	}
	if i == len(ts) {
		delete(l.fails, key)
		return nil
	}
	if i > 0 {
		ts = append(ts[:0], ts[i:]...)
		l.fails[key] = ts
	}
	return ts
}
