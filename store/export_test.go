package store

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// SniffImage exposes sniffImage to the tests of package store_test.
var SniffImage = sniffImage

// Savepoint runs fn as a service call does: in a savepoint of the unit of
// work in ctx, or in a transaction of its own.
func (db *DB) Savepoint(ctx context.Context, fn func(tx pgx.Tx) error) error { return db.inTx(ctx, fn) }

// ExecHeld exposes execHeld.
var ExecHeld = execHeld
