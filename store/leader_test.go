package store_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldops/fieldops/store"
	"github.com/fieldops/fieldops/store/storetest"
)

const leaderKey = 424242

func mustLeadership(tb testing.TB, url string) *store.Leadership {
	tb.Helper()
	l, err := store.NewLeadership(url, leaderKey, nil)
	if err != nil {
		tb.Fatal(err)
	}
	l.RetryEvery = 20 * time.Millisecond
	l.PingEvery = 50 * time.Millisecond
	return l
}

// instance is one process contending for leadership: its fn records that
// it leads and runs until told to stop or its context ends.
type instance struct {
	name    string
	leading chan struct{} // closed when fn starts
	stop    chan struct{} // close to make fn return
	done    chan error    // Lead's result
	lostCtx atomic.Bool   // fn's context was cancelled
	running *atomic.Int64 // fns running across instances
	maxRun  *atomic.Int64
}

func startInstance(ctx context.Context, l *store.Leadership, name string, running, maxRun *atomic.Int64) *instance {
	in := &instance{name: name, leading: make(chan struct{}), stop: make(chan struct{}), done: make(chan error, 1),
		running: running, maxRun: maxRun}
	go func() {
		in.done <- l.Lead(ctx, func(ctx context.Context) error {
			n := running.Add(1)
			defer running.Add(-1)
			for {
				m := maxRun.Load()
				if n <= m || maxRun.CompareAndSwap(m, n) {
					break
				}
			}
			close(in.leading)
			select {
			case <-in.stop:
				return nil
			case <-ctx.Done():
				in.lostCtx.Store(true)
				return ctx.Err()
			}
		})
	}()
	return in
}

func (in *instance) isLeading() bool {
	select {
	case <-in.leading:
		return true
	default:
		return false
	}
}

// firstLeader waits for one of the instances to lead and returns it.
func firstLeader(tb testing.TB, ins ...*instance) *instance {
	tb.Helper()
	deadline := time.After(10 * time.Second)
	for {
		for _, in := range ins {
			if in.isLeading() {
				return in
			}
		}
		select {
		case <-deadline:
			tb.Fatal("nobody leads")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func wantLeadsSoon(tb testing.TB, in *instance) {
	tb.Helper()
	select {
	case <-in.leading:
	case <-time.After(10 * time.Second):
		tb.Fatalf("%s did not take over", in.name)
	}
}

func wantResult(tb testing.TB, in *instance) error {
	tb.Helper()
	select {
	case err := <-in.done:
		return err
	case <-time.After(10 * time.Second):
		tb.Fatalf("%s: Lead did not return", in.name)
		return nil
	}
}

func TestLeadership(t *testing.T) {
	t.Parallel()
	url := storetest.MustDatabaseURL(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var running, maxRun atomic.Int64

	t.Run("OneLeadsOthersTakeOver", func(t *testing.T) {
		a := startInstance(ctx, mustLeadership(t, url), "a", &running, &maxRun)
		b := startInstance(ctx, mustLeadership(t, url), "b", &running, &maxRun)
		first := firstLeader(t, a, b)
		second := map[*instance]*instance{a: b, b: a}[first]
		// The standby keeps trying, and does not lead.
		time.Sleep(10 * 20 * time.Millisecond)
		if second.isLeading() {
			t.Fatal("two instances lead")
		}
		close(first.stop)
		if err := wantResult(t, first); err != nil {
			t.Fatalf("Lead = %v, want fn's nil", err)
		}
		wantLeadsSoon(t, second)
		if maxRun.Load() != 1 {
			t.Errorf("%d fns ran at once", maxRun.Load())
		}

		// The leader's connection is killed: its fn's context is cancelled,
		// Lead says leadership was lost, and a standby takes over.
		c := startInstance(ctx, mustLeadership(t, url), "c", &running, &maxRun)
		time.Sleep(5 * 20 * time.Millisecond)
		if c.isLeading() {
			t.Fatal("two instances lead")
		}
		var killed bool
		if err := pool.QueryRow(context.Background(), `
			SELECT pg_terminate_backend(pid) FROM pg_locks
			WHERE locktype = 'advisory' AND granted AND classid = 0 AND objid = $1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
			leaderKey).Scan(&killed); err != nil || !killed {
			t.Fatalf("terminate the leader's backend: %v, %v", killed, err)
		}
		err := wantResult(t, second)
		if !errors.Is(err, store.ErrLeadershipLost) || !second.lostCtx.Load() {
			t.Fatalf("Lead after the connection died = %v (context cancelled: %v)", err, second.lostCtx.Load())
		}
		wantLeadsSoon(t, c)
		close(c.stop)
		if err := wantResult(t, c); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("FnError", func(t *testing.T) {
		errFn := errors.New("poller failed")
		l := mustLeadership(t, url)
		if err := l.Lead(ctx, func(context.Context) error { return errFn }); err != errFn {
			t.Fatalf("Lead = %v, want fn's error", err)
		}
		// The lock was released: another instance leads at once.
		ran := false
		if err := mustLeadership(t, url).Lead(ctx, func(context.Context) error { ran = true; return nil }); err != nil || !ran {
			t.Fatalf("Lead = %v, ran %v", err, ran)
		}
	})

	t.Run("StandbyStops", func(t *testing.T) {
		lctx, lcancel := context.WithCancel(ctx)
		a := startInstance(lctx, mustLeadership(t, url), "a", &running, &maxRun)
		wantLeadsSoon(t, a)
		sctx, scancel := context.WithCancel(ctx)
		b := startInstance(sctx, mustLeadership(t, url), "b", &running, &maxRun)
		time.Sleep(5 * 20 * time.Millisecond)
		scancel()
		if err := wantResult(t, b); !errors.Is(err, context.Canceled) || b.isLeading() {
			t.Fatalf("standby Lead = %v", err)
		}
		// The leader's context ends: fn's does too.
		lcancel()
		if err := wantResult(t, a); !errors.Is(err, context.Canceled) || !a.lostCtx.Load() {
			t.Fatalf("leader Lead = %v", err)
		}
		// The lock goes with the connection (the server ends the backend
		// a moment after the client closes it).
		for deadline := time.Now().Add(5 * time.Second); ; {
			n := count(t, &env{pool: pool}, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1
				AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`, leaderKey)
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d advisory locks left", n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
