package store

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// lazyTx is the transaction of a unit of work (WithinTx). Every service
// call inside a unit runs in a savepoint, and a round trip to Postgres
// per BEGIN, SAVEPOINT and RELEASE SAVEPOINT was most of what a bot
// update cost. lazyTx holds those statements back and sends them in one
// pipeline (a pgx batch) with the next statement that needs an answer, so
// they cost no round trip of their own; so do statements queued with
// execHeld, such as the organisation's row lock and marking an update
// done (which goes with the COMMIT). A savepoint whose call sent nothing is
// never sent at all.
//
// Every savepoint is named unit_call: Postgres lets a name be reused, and
// RELEASE or ROLLBACK TO always mean the innermost savepoint of that
// name, which is the one being ended (savepoints nest). A fixed name also
// keeps the statements in pgx's statement cache.
type lazyTx struct {
	conn   *pgx.Conn
	begin  *heldOp // the BEGIN, sent with the first statement
	held   []*heldOp
	closed bool
	// broken is the error of a held statement. A held statement that
	// fails leaves the SAVEPOINTs sent after it in the same batch not run,
	// so no savepoint can be trusted any more: every later statement
	// returns this error and the unit rolls back.
	broken error
}

// heldOp is a statement held back until the next round trip.
type heldOp struct {
	sql  string
	args []any
	sent bool
}

const (
	sqlSavepoint  = "SAVEPOINT unit_call"
	sqlRelease    = "RELEASE SAVEPOINT unit_call"
	sqlRollbackTo = "ROLLBACK TO SAVEPOINT unit_call"
)

var _ pgx.Tx = (*lazyTx)(nil)

// beginLazy starts a lazy transaction on conn; nothing is sent yet.
func beginLazy(conn *pgx.Conn) *lazyTx {
	t := &lazyTx{conn: conn, begin: &heldOp{sql: "BEGIN"}}
	t.held = []*heldOp{t.begin}
	return t
}

// execHeld runs sql in tx for its effect only: when tx is a unit's lazy
// transaction, it is held back and sent with the next statement or, at
// the latest, with the COMMIT, and a failure is reported by that
// statement or the commit (which it then fails); otherwise at once.
func execHeld(ctx context.Context, tx pgx.Tx, sql string, args ...any) error {
	var t *lazyTx
	switch x := tx.(type) {
	case *lazyTx:
		t = x
	case *lazySavepoint:
		if !x.closed {
			t = x.lazyTx
		}
	}
	if t != nil && !t.closed {
		t.held = append(t.held, &heldOp{sql: sql, args: args})
		return nil
	}
	_, err := tx.Exec(ctx, sql, args...)
	return err
}

// send sends the held statements and then sql in one batch, returning the
// batch with the held statements' results already read.
func (t *lazyTx) send(ctx context.Context, sql string, args []any) (pgx.BatchResults, error) {
	b := &pgx.Batch{}
	for _, op := range t.held {
		b.Queue(op.sql, op.args...)
		op.sent = true
	}
	n := len(t.held)
	t.held = t.held[:0]
	b.Queue(sql, args...)
	br := t.conn.SendBatch(ctx, b)
	for range n {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			t.broken = err
			return nil, err
		}
	}
	return br, nil
}

// usable reports why no statement may be sent, if so.
func (t *lazyTx) usable() error {
	if t.closed {
		return pgx.ErrTxClosed
	}
	return t.broken
}

func (t *lazyTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := t.usable(); err != nil {
		return pgconn.CommandTag{}, err
	}
	if len(t.held) == 0 {
		return t.conn.Exec(ctx, sql, args...)
	}
	br, err := t.send(ctx, sql, args)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

func (t *lazyTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := t.usable(); err != nil {
		return nil, err
	}
	if len(t.held) == 0 {
		return t.conn.Query(ctx, sql, args...)
	}
	br, err := t.send(ctx, sql, args)
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

func (t *lazyTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if t.usable() == nil && len(t.held) == 0 {
		return t.conn.QueryRow(ctx, sql, args...)
	}
	rows, err := t.Query(ctx, sql, args...)
	return &batchRow{rows: rows, err: err}
}

// flush sends the held statements on their own.
func (t *lazyTx) flush(ctx context.Context) error {
	if len(t.held) == 0 {
		return nil
	}
	_, err := t.Exec(ctx, "SELECT 1")
	return err
}

func (t *lazyTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if err := t.flush(ctx); err != nil {
		return failedBatch{err}
	}
	return t.conn.SendBatch(ctx, b)
}

func (t *lazyTx) CopyFrom(ctx context.Context, table pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	if err := t.flush(ctx); err != nil {
		return 0, err
	}
	return t.conn.CopyFrom(ctx, table, cols, src)
}

func (t *lazyTx) LargeObjects() pgx.LargeObjects {
	panic("store: large objects are not used in a unit of work")
}

func (t *lazyTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	return t.conn.Prepare(ctx, name, sql)
}

func (t *lazyTx) Conn() *pgx.Conn { return t.conn }

// Begin starts a savepoint, held back until the call sends something.
func (t *lazyTx) Begin(context.Context) (pgx.Tx, error) {
	if t.closed {
		return nil, pgx.ErrTxClosed
	}
	op := &heldOp{sql: sqlSavepoint}
	t.held = append(t.held, op)
	return &lazySavepoint{lazyTx: t, op: op}, nil
}

// Commit sends what is held with the COMMIT. A transaction that never
// sent its BEGIN and holds nothing but savepoints has nothing to commit.
func (t *lazyTx) Commit(ctx context.Context) error {
	if t.closed {
		return pgx.ErrTxClosed
	}
	if t.broken != nil {
		err := t.broken
		_ = t.Rollback(ctx)
		return err
	}
	if !t.begin.sent && !slices.ContainsFunc(t.held, func(op *heldOp) bool { return !isBookkeeping(op.sql) }) {
		t.closed = true
		return nil
	}
	tag, err := t.Exec(ctx, "COMMIT")
	t.closed = true
	if err != nil {
		if t.conn.PgConn().TxStatus() != 'I' {
			_ = t.conn.Close(ctx)
		}
		return err
	}
	if tag.String() == "ROLLBACK" {
		return pgx.ErrTxCommitRollback
	}
	return nil
}

// Rollback rolls the transaction back; what is held is dropped.
func (t *lazyTx) Rollback(ctx context.Context) error {
	if t.closed {
		return pgx.ErrTxClosed
	}
	t.closed = true
	t.held = nil
	if !t.begin.sent {
		return nil
	}
	if _, err := t.conn.Exec(ctx, "ROLLBACK"); err != nil {
		_ = t.conn.Close(ctx) // the connection's state is unknown
		return err
	}
	return nil
}

func isBookkeeping(sql string) bool {
	return sql == "BEGIN" || sql == sqlSavepoint || sql == sqlRelease
}

// drop removes op, not sent, from the held statements.
func (t *lazyTx) drop(op *heldOp) {
	t.held = slices.DeleteFunc(t.held, func(o *heldOp) bool { return o == op })
}

// lazySavepoint is a savepoint of a lazyTx; statements go through the
// transaction.
type lazySavepoint struct {
	*lazyTx
	op     *heldOp
	closed bool
}

func (s *lazySavepoint) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if s.closed {
		return pgconn.CommandTag{}, pgx.ErrTxClosed
	}
	return s.lazyTx.Exec(ctx, sql, args...)
}

func (s *lazySavepoint) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if s.closed {
		return nil, pgx.ErrTxClosed
	}
	return s.lazyTx.Query(ctx, sql, args...)
}

func (s *lazySavepoint) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if s.closed {
		return &batchRow{err: pgx.ErrTxClosed}
	}
	return s.lazyTx.QueryRow(ctx, sql, args...)
}

// Commit releases the savepoint with the next statement, or forgets it
// when it was never sent.
func (s *lazySavepoint) Commit(context.Context) error {
	if s.closed || s.lazyTx.closed {
		return pgx.ErrTxClosed
	}
	s.closed = true
	if !s.op.sent {
		s.drop(s.op)
		return nil
	}
	s.held = append(s.held, &heldOp{sql: sqlRelease})
	return nil
}

// Rollback undoes what was done since the savepoint, at once, and
// releases it with the next statement. Statements it held are dropped.
func (s *lazySavepoint) Rollback(ctx context.Context) error {
	if s.closed || s.lazyTx.closed {
		return pgx.ErrTxClosed
	}
	s.closed = true
	if s.broken != nil {
		return nil // the unit rolls back whole (see broken)
	}
	if !s.op.sent {
		// Everything held from its SAVEPOINT on is this savepoint's.
		if i := slices.Index(s.held, s.op); i >= 0 {
			s.held = s.held[:i]
		}
		return nil
	}
	// What is held was added since the last statement, all of it inside
	// this savepoint: the releases of inner savepoints must still go (so
	// that ROLLBACK TO finds this one), the rest is undone anyway.
	s.held = slices.DeleteFunc(s.held, func(op *heldOp) bool { return !isBookkeeping(op.sql) })
	if _, err := s.lazyTx.Exec(ctx, sqlRollbackTo); err != nil {
		return fmt.Errorf("roll back to savepoint: %w", err)
	}
	s.held = append(s.held, &heldOp{sql: sqlRelease})
	return nil
}

// batchRows are the rows of a batch's last statement; closing them
// closes the batch.
type batchRows struct {
	pgx.Rows
	br     pgx.BatchResults
	err    error
	closed bool
}

func (r *batchRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

func (r *batchRows) Close() {
	r.Rows.Close()
	if !r.closed {
		r.closed = true
		r.err = r.br.Close()
	}
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

// batchRow is QueryRow's answer from a batch.
type batchRow struct {
	rows pgx.Rows
	err  error
}

func (r *batchRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}

// failedBatch is the answer of SendBatch when the held statements failed.
type failedBatch struct{ err error }

func (f failedBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, f.err }
func (f failedBatch) Query() (pgx.Rows, error)         { return nil, f.err }
func (f failedBatch) QueryRow() pgx.Row                { return &batchRow{err: f.err} }
func (f failedBatch) Close() error                     { return f.err }
func (f failedBatch) Tx() pgx.Tx                       { return nil }
