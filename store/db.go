// Package store implements the domain services of package fieldops on
// PostgreSQL (pgx/v5) and Redis (go-redis/v9).
//
// Every exported service method follows one pattern: begin a transaction,
// load the actor's current membership and check the permission and the
// organisation, do the work with small helpers that take the transaction,
// write the audit entry (and any outgoing notifications), commit.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldops/fieldops"
)

// DB is the Postgres side of the store, shared by the services.
type DB struct {
	pool   *pgxpool.Pool
	logger *slog.Logger
	// Now is the clock; tests replace it.
	Now func() time.Time
}

// NewDB wraps an open pool.
func NewDB(pool *pgxpool.Pool, logger *slog.Logger) *DB {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &DB{pool: pool, logger: logger, Now: time.Now}
}

// OpenPool connects to Postgres.
func OpenPool(ctx context.Context, databaseURL string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return pool, nil
}

// Pool returns the underlying pool.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Ping checks that Postgres answers.
func (db *DB) Ping(ctx context.Context) error { return db.pool.Ping(ctx) }

// now returns the clock's time at Postgres precision.
func (db *DB) now() time.Time { return db.Now().UTC().Truncate(time.Microsecond) }

// inTx runs fn in a transaction and commits when it returns nil. Errors
// from Postgres are translated into domain errors.
func (db *DB) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	var err error
	if u, ok := ctx.Value(unitKey{}).(*unit); ok {
		// Inside a unit of work (WithinTx): a savepoint, so that a refusal
		// undoes only this call and the caller can still commit the rest.
		err = pgx.BeginFunc(ctx, u.tx, fn)
	} else {
		err = pgx.BeginFunc(ctx, db.pool, fn)
	}
	if err == nil {
		return nil
	}
	return translate(err)
}

// unitKey carries a unit of work in a context.
type unitKey struct{}

// unit is a unit of work: its transaction, and what to do once it has
// committed.
type unit struct {
	tx    pgx.Tx
	after []func()
	// acc is the membership the last read-only call loaded, which the
	// next call of the same actor reuses instead of a query: reads change
	// no membership. A write (loadForWrite) forgets it for the calls
	// after it.
	acc *access
	// chat is the state of the chat whose links Resolve read in this
	// unit (it comes with them), for ChatState; SetChatState forgets it.
	chat *chatRow
}

// unitTx returns the transaction of the unit of work in ctx, if any.
func unitTx(ctx context.Context) (pgx.Tx, bool) {
	u, ok := ctx.Value(unitKey{}).(*unit)
	if !ok {
		return nil, false
	}
	return u.tx, true
}

// afterCommit runs fn once what was just written has committed: at the
// end of the unit of work in ctx if there is one (not at all if the unit
// rolls back), at once otherwise (call it after inTx returned nil). For
// side effects outside Postgres, such as Redis.
func (db *DB) afterCommit(ctx context.Context, fn func()) {
	if u, ok := ctx.Value(unitKey{}).(*unit); ok {
		u.after = append(u.after, fn)
		return
	}
	fn()
}

// WithinTx runs fn in one transaction carried in its context: every
// service of this package called with that context writes in it (each
// call in a savepoint), so fn's effects, their audit entries and
// notifications commit or roll back together with whatever fn's caller
// adds through tx. Side effects outside Postgres that the services
// register (afterCommit) run after the commit. The bot uses it to handle
// an update and mark it done atomically.
func (db *DB) WithinTx(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) error) (err error) {
	if _, ok := ctx.Value(unitKey{}).(*unit); ok {
		return fieldops.Internal(errors.New("WithinTx nested in a unit of work"), "start a unit of work")
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return translate(err)
	}
	defer conn.Release() // a connection left in a transaction is closed, not reused
	tx := beginLazy(conn.Conn())
	u := &unit{tx: tx}
	defer func() {
		if !tx.closed { // fn failed or panicked
			_ = tx.Rollback(ctx)
		}
		if err != nil {
			err = translate(err)
		}
	}()
	if err := fn(context.WithValue(ctx, unitKey{}, u), tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	for _, f := range u.after {
		f()
	}
	return nil
}

// constraintMessages turns a violated constraint into a message for the
// user. Keyed by constraint name, never by the driver's message text.
var constraintMessages = map[string]*fieldops.Error{
	"users_email_key":                  {Code: fieldops.ECONFLICT, Field: "email", Message: "Someone with this e-mail address already has an account."},
	"memberships_pkey":                 {Code: fieldops.ECONFLICT, Field: "email", Message: "This person is already a member of the organisation."},
	"job_assignments_one_primary":      {Code: fieldops.EINVALID, Field: "primary", Message: "A job has exactly one primary engineer; unmark the other one first."},
	"job_assignments_primary_required": {Code: fieldops.EINVALID, Field: "primary", Message: "Mark one of the job's engineers as the primary contact."},
	"jobs_org_id_site_id_customer_id_fkey": {Code: fieldops.EINVALID, Field: "site_id",
		Message: "That site does not belong to the chosen customer: pick one of the customer's sites."},
	"organisations_check": {Code: fieldops.EINVALID, Field: "capacity_red_pct", Message: "The red capacity threshold must be above the amber one."},
}

// translate maps Postgres errors onto domain errors by SQLSTATE and
// constraint name.
func translate(err error) error {
	var fe *fieldops.Error
	if errors.As(err, &fe) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &fieldops.Error{Code: fieldops.EUNAVAILABLE, Message: "The request took too long; please try again.", Err: err}
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		if m, ok := constraintMessages[pg.ConstraintName]; ok {
			return &fieldops.Error{Code: m.Code, Field: m.Field, Message: m.Message, Err: err}
		}
		switch pg.Code {
		case "23505":
			return &fieldops.Error{Code: fieldops.ECONFLICT, Message: "That already exists.", Err: err}
		case "23503", "23514", "22001", "22003", "22P02":
			return &fieldops.Error{Code: fieldops.EINVALID, Message: "Some of the details are not valid; check them and try again.", Err: err}
		case "40001", "40P01":
			return &fieldops.Error{Code: fieldops.ECONFLICT, Message: "Someone else changed this at the same time; please try again.", Err: err}
		}
		return fieldops.Internal(err, "postgres")
	}
	if pgconn.SafeToRetry(err) || errors.Is(err, pgx.ErrTxClosed) {
		return &fieldops.Error{Code: fieldops.EUNAVAILABLE, Message: "The database cannot be reached; please try again in a minute.", Err: err}
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return &fieldops.Error{Code: fieldops.EUNAVAILABLE, Message: "The database cannot be reached; please try again in a minute.", Err: err}
	}
	return fieldops.Internal(err, "store")
}

// notFound is the answer for anything outside the actor's reach,
// including other organisations' records.
func notFound(what string) error {
	return fieldops.Errorf(fieldops.ENOTFOUND, "%s not found. It may have been removed, or the link is wrong.", what)
}
