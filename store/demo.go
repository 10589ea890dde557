package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// demoLock is the advisory lock key that serialises `fieldops demo` runs.
const demoLock = 0x66646d6f // "fdmo"

// FindDemoOrganisation returns the id of the demo organisation, if one was
// made.
func (db *DB) FindDemoOrganisation(ctx context.Context) (int64, bool, error) {
	var id int64
	err := db.pool.QueryRow(ctx, `SELECT id FROM organisations WHERE demo`).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, translate(err)
	}
	return id, true, nil
}

// WithDemoLock runs fn while holding a session advisory lock, so that two
// `fieldops demo` runs cannot both create the demo.
func (db *DB) WithDemoLock(ctx context.Context, fn func() error) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return translate(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, demoLock); err != nil {
		return translate(err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, demoLock)
	return fn()
}

// MarkDemo records that orgID is the demo organisation; there is only
// ever one.
func (db *DB) MarkDemo(ctx context.Context, orgID int64) error {
	tag, err := db.pool.Exec(ctx, `UPDATE organisations SET demo = true WHERE id = $1`, orgID)
	if err != nil {
		return translate(err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("mark demo: organisation %d not found", orgID)
	}
	return nil
}
