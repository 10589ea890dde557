package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldops/fieldops"
)

// Leadership implements fieldops.Leadership with a Postgres session-level
// advisory lock held on a connection of its own (not one of the pool's,
// which the pool could recycle): the instance whose connection holds the
// lock leads; the others try again every RetryEvery. The leader pings its
// connection every PingEvery; when the connection fails, Postgres has
// released the lock (the session ended) and the leader's context is
// cancelled. Between the connection's end and the failed ping, a standby
// may already lead: leadership is exclusive to within about PingEvery, so
// what the leader does must tolerate a brief overlap (a second poller
// gets Telegram's 409; the inbox and outbox are safe to share).
type Leadership struct {
	config *pgx.ConnConfig
	key    int64
	logger *slog.Logger

	// RetryEvery is how often a standby tries to take the lock.
	RetryEvery time.Duration
	// PingEvery is how often the leader checks its connection; a ping
	// that takes longer fails.
	PingEvery time.Duration
}

var _ fieldops.Leadership = (*Leadership)(nil)

// ErrLeadershipLost is returned by Lead, wrapped, when the connection that
// held the lock failed while fn ran.
var ErrLeadershipLost = errors.New("leadership lost")

// NewLeadership returns a leadership on the advisory lock key of the
// database at databaseURL; instances that contend use the same key.
func NewLeadership(databaseURL string, key int64, logger *slog.Logger) (*Leadership, error) {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("leadership: database url: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "fieldops-leader"
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Leadership{config: cfg, key: key, logger: logger, RetryEvery: 2 * time.Second, PingEvery: 3 * time.Second}, nil
}

// Lead waits until this instance holds the lock (or ctx ends: ctx's
// error), then runs fn with a context that is cancelled when the lock's
// connection fails or ctx ends. When fn returns the lock is released and
// the connection closed. It returns fn's error; if leadership was lost and
// fn returned nil or a cancellation, an error wrapping ErrLeadershipLost.
func (l *Leadership) Lead(ctx context.Context, fn func(ctx context.Context) error) error {
	conn, err := l.acquire(ctx)
	if err != nil {
		return err
	}
	l.logger.Info("leadership taken", "key", l.key)
	lctx, cancel := context.WithCancelCause(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		l.watch(lctx, conn, cancel)
	}()
	err = fn(lctx)
	cancel(nil)
	<-watched
	lost := context.Cause(lctx)
	l.release(ctx, conn, errors.Is(lost, ErrLeadershipLost))
	if errors.Is(lost, ErrLeadershipLost) && ctx.Err() == nil && (err == nil || errors.Is(err, context.Canceled)) {
		return lost
	}
	return err
}

// acquire connects and tries the lock every RetryEvery until it is held,
// reconnecting when the connection fails.
func (l *Leadership) acquire(ctx context.Context) (*pgx.Conn, error) {
	var conn *pgx.Conn
	closeConn := func() {
		if conn != nil {
			conn.Close(context.WithoutCancel(ctx))
			conn = nil
		}
	}
	wait := time.NewTimer(0)
	defer wait.Stop()
	for {
		select {
		case <-ctx.Done():
			closeConn()
			return nil, ctx.Err()
		case <-wait.C:
		}
		wait.Reset(l.retryEvery())
		if conn == nil || conn.IsClosed() {
			c, err := pgx.ConnectConfig(ctx, l.config)
			if err != nil {
				if ctx.Err() == nil {
					l.logger.Warn("leadership: connect", "err", err)
				}
				continue
			}
			conn = c
		}
		var held bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, l.key).Scan(&held); err != nil {
			if ctx.Err() == nil {
				l.logger.Warn("leadership: try lock", "err", err)
			}
			closeConn()
			continue
		}
		if held {
			return conn, nil
		}
	}
}

// watch pings the connection until ctx ends, and cancels with
// ErrLeadershipLost when a ping fails.
func (l *Leadership) watch(ctx context.Context, conn *pgx.Conn, cancel context.CancelCauseFunc) {
	every := l.pingEvery()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		pctx, stop := context.WithTimeout(ctx, every)
		err := conn.Ping(pctx)
		stop()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.logger.Error("leadership lost: connection failed", "key", l.key, "err", err)
			cancel(fmt.Errorf("%w: connection failed: %v", ErrLeadershipLost, err))
			return
		}
	}
}

// release unlocks (unless the connection is known to be gone) and closes
// the connection; closing alone releases the lock too.
func (l *Leadership) release(ctx context.Context, conn *pgx.Conn, lost bool) {
	rctx, stop := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer stop()
	if !lost && !conn.IsClosed() {
		if _, err := conn.Exec(rctx, `SELECT pg_advisory_unlock($1)`, l.key); err != nil {
			l.logger.Warn("leadership: unlock", "err", err)
		}
	}
	if err := conn.Close(rctx); err != nil {
		l.logger.Warn("leadership: close", "err", err)
	}
	l.logger.Info("leadership released", "key", l.key)
}

func (l *Leadership) retryEvery() time.Duration {
	if l.RetryEvery > 0 {
		return l.RetryEvery
	}
	return 2 * time.Second
}

func (l *Leadership) pingEvery() time.Duration {
	if l.PingEvery > 0 {
		return l.PingEvery
	}
	return 3 * time.Second
}
