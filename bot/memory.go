package bot

import (
	"sync"
	"time"
)

// perUser remembers one value per Telegram account for ttl: what the
// handlers need to recall between updates without a database round trip.
// It is safe for the workers to share.
type perUser[V any] struct {
	mu    sync.Mutex
	ttl   time.Duration
	m     map[int64]perUserEntry[V]
	swept time.Time
}

type perUserEntry[V any] struct {
	at time.Time
	v  V
}

func newPerUser[V any](ttl time.Duration) *perUser[V] {
	return &perUser[V]{ttl: ttl, m: map[int64]perUserEntry[V]{}}
}

// get returns the value kept for user and when it was kept, if that was
// less than ttl before now.
func (p *perUser[V]) get(user int64, now time.Time) (V, time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.m[user]
	if !ok || !fresh(e.at, now, p.ttl) {
		var zero V
		return zero, time.Time{}, false
	}
	return e.v, e.at, true
}

// put keeps v for user as of at. Entries past their ttl are dropped at
// most once per ttl, so that the map holds only the accounts active
// lately.
func (p *perUser[V]) put(user int64, at time.Time, v V) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.m[user] = perUserEntry[V]{at: at, v: v}
	if at.Sub(p.swept) < p.ttl {
		return
	}
	p.swept = at
	for k, e := range p.m {
		if !fresh(e.at, at, p.ttl) {
			delete(p.m, k)
		}
	}
}

// forget drops what is kept for user.
func (p *perUser[V]) forget(user int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, user)
}

// fresh reports whether at is within ttl of now, on either side (a clock
// that stepped back does not make an entry last for ever).
func fresh(at, now time.Time, ttl time.Duration) bool {
	d := now.Sub(at)
	return d < ttl && d > -ttl
}
