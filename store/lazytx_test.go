package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fieldops/fieldops/store"
	"github.com/fieldops/fieldops/store/storetest"
)

// TestUnitOfWorkSavepoints: inside WithinTx, BEGIN, SAVEPOINT and RELEASE
// are held back and sent with the next statement; the outcome must be
// that of real nested transactions: a failed call (a refusal in Go, or
// an error from Postgres) undoes only itself, nested calls undo only
// their own part, a statement held for the commit fails the commit, and
// a panic or error rolls everything back.
func TestUnitOfWorkSavepoints(t *testing.T) {
	t.Parallel()
	pool := storetest.MustOpenDB(t)
	db := store.NewDB(pool, nil)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE lazy (v int PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	values := func(t *testing.T) []int {
		t.Helper()
		rows, _ := pool.Query(ctx, `SELECT v FROM lazy ORDER BY v`)
		vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			t.Fatal(err)
		}
		_, _ = pool.Exec(ctx, `DELETE FROM lazy`)
		return vs
	}
	insert := func(ctx context.Context, v int) error {
		return db.Savepoint(ctx, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO lazy VALUES ($1)`, v)
			return err
		})
	}
	refused := errors.New("refused")
	equal := func(t *testing.T, got []int, want ...int) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("rows = %v, want %v", got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("rows = %v, want %v", got, want)
			}
		}
	}

	t.Run("CallsCommitTogether", func(t *testing.T) {
		err := db.WithinTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
			for _, v := range []int{1, 2, 3} {
				if err := insert(ctx, v); err != nil {
					return err
				}
			}
			// A read in the unit sees the calls' writes.
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM lazy`).Scan(&n); err != nil || n != 3 {
				t.Errorf("count in the unit = %d, %v", n, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		equal(t, values(t), 1, 2, 3)
	})
	t.Run("RefusedCallUndoesOnlyItself", func(t *testing.T) {
		err := db.WithinTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
			if err := insert(ctx, 1); err != nil {
				return err
			}
			err := db.Savepoint(ctx, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `INSERT INTO lazy VALUES (2)`); err != nil {
					return err
				}
				return refused
			})
			if !errors.Is(err, refused) {
				t.Errorf("call = %v, want the refusal", err)
			}
			return insert(ctx, 3)
		})
		if err != nil {
			t.Fatal(err)
		}
		equal(t, values(t), 1, 3)
	})
	t.Run("PostgresErrorUndoesOnlyItsCall", func(t *testing.T) {
		err := db.WithinTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
			if err := insert(ctx, 1); err != nil {
				return err
			}
			err := insert(ctx, 1) // duplicate key: the transaction would be aborted without the savepoint
			var pg *pgconn.PgError
			if !errors.As(err, &pg) || pg.Code != "23505" {
				t.Errorf("duplicate = %v, want 23505", err)
			}
			return insert(ctx, 2)
		})
		if err != nil {
			t.Fatal(err)
		}
		equal(t, values(t), 1, 2)
	})
	t.Run("Nested", func(t *testing.T) {
		err := db.WithinTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
			// Outer call keeps 1, its inner call 2 is refused, a second
			// inner call 3 commits, then the outer call is refused: 1 and 3
			// go with it. An inner call that sends nothing is never sent.
			err := db.Savepoint(ctx, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `INSERT INTO lazy VALUES (1)`); err != nil {
					return err
				}
				_ = db.Savepoint(ctx, func(pgx.Tx) error { return refused })
				if err := db.Savepoint(ctx, func(tx pgx.Tx) error {
					_, err := tx.Exec(ctx, `INSERT INTO lazy VALUES (2)`)
					if err != nil {
						return err
					}
					return refused
				}); !errors.Is(err, refused) {
					t.Errorf("inner = %v", err)
				}
				if err := insert(ctx, 3); err != nil {
					return err
				}
				return refused
			})
			if !errors.Is(err, refused) {
				t.Errorf("outer = %v", err)
			}
			if err := insert(ctx, 4); err != nil {
				return err
			}
			return db.Savepoint(ctx, func(tx pgx.Tx) error {
				return insert(ctx, 5)
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		equal(t, values(t), 4, 5)
	})
	t.Run("HeldForCommitFailsTheCommit", func(t *testing.T) {
		err := db.WithinTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
			if err := insert(ctx, 1); err != nil {
				return err
			}
			return store.ExecHeld(ctx, tx, `INSERT INTO lazy VALUES (1)`)
		})
		var pg *pgconn.PgError
		if !errors.As(err, &pg) || pg.Code != "23505" {
			t.Fatalf("WithinTx = %v, want the held insert's 23505", err)
		}
		equal(t, values(t))
		// Held alone, it is still sent (with BEGIN and COMMIT).
		if err := db.WithinTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
			return store.ExecHeld(ctx, tx, `INSERT INTO lazy VALUES (7)`)
		}); err != nil {
			t.Fatal(err)
		}
		equal(t, values(t), 7)
	})
	t.Run("HeldInACall", func(t *testing.T) {
		// A statement held in a call goes with the call's next statement,
		// or is dropped with the call when it is refused.
		err := db.WithinTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
			_ = db.Savepoint(ctx, func(tx pgx.Tx) error {
				if err := store.ExecHeld(ctx, tx, `INSERT INTO lazy VALUES (1)`); err != nil {
					return err
				}
				return refused // before anything was sent
			})
			_ = db.Savepoint(ctx, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `INSERT INTO lazy VALUES (2)`); err != nil {
					return err
				}
				if err := store.ExecHeld(ctx, tx, `INSERT INTO lazy VALUES (3)`); err != nil {
					return err
				}
				return refused // after the savepoint went out
			})
			return db.Savepoint(ctx, func(tx pgx.Tx) error {
				if err := store.ExecHeld(ctx, tx, `INSERT INTO lazy VALUES (4)`); err != nil {
					return err
				}
				var n int
				return tx.QueryRow(ctx, `SELECT count(*) FROM lazy WHERE v = 4`).Scan(&n)
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		equal(t, values(t), 4)
	})
	t.Run("HeldStatementFailsTheUnit", func(t *testing.T) {
		// A held statement that fails takes the SAVEPOINTs batched after it
		// down with it: the call that sends it gets the error, every later
		// statement too, and the unit rolls back whole (nothing of call A,
		// which returned before its held insert went out).
		var errB, errC error
		err := db.WithinTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
			if err := db.Savepoint(ctx, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `INSERT INTO lazy VALUES (1)`); err != nil {
					return err
				}
				return store.ExecHeld(ctx, tx, `INSERT INTO lazy VALUES (1)`)
			}); err != nil {
				t.Errorf("call A = %v", err)
			}
			errB = insert(ctx, 2)
			errC = insert(ctx, 3)
			return nil
		})
		var pg *pgconn.PgError
		if !errors.As(errB, &pg) || pg.Code != "23505" || !errors.As(errC, &pg) {
			t.Errorf("calls after the failed held statement = %v, %v; want its 23505", errB, errC)
		}
		if !errors.As(err, &pg) || pg.Code != "23505" {
			t.Fatalf("WithinTx = %v, want the held statement's 23505", err)
		}
		equal(t, values(t))
	})
	t.Run("ErrorAndPanicRollBack", func(t *testing.T) {
		err := db.WithinTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
			if err := insert(ctx, 1); err != nil {
				return err
			}
			return refused
		})
		if !errors.Is(err, refused) {
			t.Fatalf("WithinTx = %v", err)
		}
		func() {
			defer func() { _ = recover() }()
			_ = db.WithinTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
				if err := insert(ctx, 2); err != nil {
					return err
				}
				panic("handler")
			})
		}()
		equal(t, values(t))
		// The pool is usable afterwards: no connection was left in a
		// transaction.
		for range 20 {
			if err := db.WithinTx(ctx, func(ctx context.Context, tx pgx.Tx) error { return insert(ctx, 9) }); err != nil {
				t.Fatal(err)
			}
			equal(t, values(t), 9)
		}
	})
}
