package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldops/fieldops"
)

// AuditService reads the audit log.
type AuditService struct{ db *DB }

var _ fieldops.AuditService = (*AuditService)(nil)

// NewAuditService returns the audit log service.
func NewAuditService(db *DB) *AuditService { return &AuditService{db: db} }

// change records one field's old and new value.
type change struct {
	From any `json:"from"`
	To   any `json:"to"`
}

// entry is what a service method records.
type entry struct {
	action     string
	targetType string
	targetID   int64
	changes    map[string]any
}

// audit appends an entry for the actor to the organisation's log, inside
// the caller's transaction.
func (db *DB) audit(ctx context.Context, tx pgx.Tx, acc *access, e entry) error {
	return db.appendAudit(ctx, tx, acc.OrgID, acc.UserID, acc.name, acc.actor.Channel, acc.actor.IP, e)
}

// appendAudit extends the organisation's hash chain by one entry. The
// organisation's row, then its chain head (audit_chains), are locked
// while the head moves, so entries of one organisation are chained in
// commit order.
func (db *DB) appendAudit(ctx context.Context, tx pgx.Tx, orgID, actorID int64, label string, ch fieldops.Channel, ip netip.Addr, e entry) error {
	if ch == "" {
		ch = fieldops.ChannelSystem
	}
	if label == "" {
		label = string(ch)
	}
	changesJSON, err := json.Marshal(orEmpty(e.changes))
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.action, err)
	}
	ev := fieldops.AuditEvent{
		OrgID: orgID, At: db.now(), ActorUserID: actorID, ActorLabel: label, Channel: ch,
		Action: e.action, TargetType: e.targetType, TargetID: strconv.FormatInt(e.targetID, 10),
	}
	if ip.IsValid() {
		ev.IP = ip.WithZone("").Unmap().String()
	}
	var actor *int64
	if actorID != 0 {
		actor = &actorID
	}
	var ipArg *string
	if ev.IP != "" {
		ipArg = &ev.IP
	}
	// One statement, one round trip: lock the chain head, write the entry
	// and move the head. The hash is auditHash's, computed by Postgres
	// because two of its fields come from the row just locked (the
	// sequence number and the previous hash) and one from Postgres's own
	// printing of the changes as jsonb (which is also how they read back):
	// Go supplies the length-prefixed encoding of the fields around them
	// (auditHashParts); VerifyChain recomputes it in Go, and
	// TestAuditHashInSQL and TestVerifyChain* check that both agree.
	pre, mid := auditHashParts(&ev)
	tag, err := tx.Exec(ctx, `
		WITH head AS (
			SELECT seq + 1 AS seq, head AS prev, COALESCE(head, ''::bytea) AS prev_bytes,
			       convert_to($2::jsonb::text, 'UTF8') AS changes
			FROM audit_chains
			-- The organisation's row first, as every writer locks it (the
			-- filter runs below the row lock of audit_chains).
			WHERE org_id = $1 AND EXISTS (SELECT 1 FROM organisations WHERE id = $1 FOR NO KEY UPDATE)
			FOR UPDATE),
		entry AS (
			INSERT INTO audit_events (org_id, seq, at, actor_user_id, actor_label, channel, ip, action, target_type, target_id, changes, prev_hash, hash)
			SELECT $1, seq, $3, $4, $5, $6, $7, $8, $9, $10, $2::jsonb, prev,
			       sha256(int8send(octet_length(prev_bytes)::bigint) || prev_bytes || $11::bytea
			              || int8send(octet_length(seq::text)::bigint) || convert_to(seq::text, 'UTF8') || $12::bytea
			              || int8send(octet_length(changes)::bigint) || changes)
			FROM head
			RETURNING seq, hash)
		UPDATE audit_chains c SET seq = entry.seq, head = entry.hash FROM entry WHERE c.org_id = $1`,
		orgID, changesJSON, ev.At, actor, label, string(ch), ipArg, e.action, e.targetType, ev.TargetID, pre, mid)
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.action, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("audit %s: organisation %d not found", e.action, orgID)
	}
	return nil
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// auditHash is SHA-256 over the previous hash and every field of the
// entry, each length-prefixed so no two entries encode alike.
func auditHash(ev *fieldops.AuditEvent, changes []byte) []byte {
	pre, mid := auditHashParts(ev)
	h := sha256.New()
	h.Write(lengthPrefixed(nil, ev.PrevHash))
	h.Write(pre)
	h.Write(lengthPrefixed(nil, strconv.AppendInt(nil, ev.Seq, 10)))
	h.Write(mid)
	h.Write(lengthPrefixed(nil, changes))
	return h.Sum(nil)
}

// auditHashParts is the hashed encoding of the fields between the
// previous hash and the sequence number (pre: the organisation) and
// between the sequence number and the changes (mid: time, actor, label,
// channel, IP, action and target).
func auditHashParts(ev *fieldops.AuditEvent) (pre, mid []byte) {
	num := func(b []byte, v int64) []byte { return lengthPrefixed(b, strconv.AppendInt(nil, v, 10)) }
	pre = num(nil, ev.OrgID)
	mid = num(nil, ev.At.UnixMicro())
	mid = num(mid, ev.ActorUserID)
	for _, f := range []string{ev.ActorLabel, string(ev.Channel), ev.IP, ev.Action, ev.TargetType, ev.TargetID} {
		mid = lengthPrefixed(mid, []byte(f))
	}
	return pre, mid
}

// lengthPrefixed appends v's length as 8 bytes big-endian, then v.
func lengthPrefixed(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(len(v)))
	return append(b, v...)
}

const auditColumns = `id, org_id, seq, at, COALESCE(actor_user_id, 0), actor_label, channel, COALESCE(host(ip), ''),
	action, target_type, target_id, changes::text, prev_hash, hash`

func scanAudit(row pgx.Row) (*fieldops.AuditEvent, []byte, error) {
	ev := &fieldops.AuditEvent{}
	var ch, changes string
	if err := row.Scan(&ev.ID, &ev.OrgID, &ev.Seq, &ev.At, &ev.ActorUserID, &ev.ActorLabel, &ch, &ev.IP,
		&ev.Action, &ev.TargetType, &ev.TargetID, &changes, &ev.PrevHash, &ev.Hash); err != nil {
		return nil, nil, err
	}
	ev.Channel = fieldops.Channel(ch)
	if err := json.Unmarshal([]byte(changes), &ev.Changes); err != nil {
		return nil, nil, fmt.Errorf("audit %d changes: %w", ev.ID, err)
	}
	return ev, []byte(changes), nil
}

// auditWhere builds the WHERE clause and arguments of a filter.
func auditWhere(orgID int64, f fieldops.AuditFilter) (string, []any, error) {
	where := []string{"org_id = $1"}
	args := []any{orgID}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.ActorUserID != 0 {
		add("actor_user_id = $%d", f.ActorUserID)
	}
	if f.Action != "" {
		add("action = $%d", f.Action)
	}
	if f.TargetType != "" {
		add("target_type = $%d", f.TargetType)
	}
	if f.TargetID != "" {
		add("target_id = $%d", f.TargetID)
	}
	if !f.From.IsZero() {
		add("at >= $%d", f.From)
	}
	if !f.To.IsZero() {
		add("at < $%d", f.To)
	}
	if f.After != "" {
		at, id, err := decodeTimeCursor(f.After)
		if err != nil {
			return "", nil, err
		}
		args = append(args, at, id)
		where = append(where, fmt.Sprintf("(at, id) < ($%d, $%d)", len(args)-1, len(args)))
	}
	return strings.Join(where, " AND "), args, nil
}

// FindAuditEvents lists the organisation's log, newest first (audit.view).
func (s *AuditService) FindAuditEvents(ctx context.Context, f fieldops.AuditFilter) ([]*fieldops.AuditEvent, string, error) {
	if err := f.Validate(); err != nil {
		return nil, "", err
	}
	var (
		out  []*fieldops.AuditEvent
		next string
	)
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.load(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.require(fieldops.FlagAuditView); err != nil {
			return err
		}
		where, args, err := auditWhere(acc.OrgID, f)
		if err != nil {
			return err
		}
		args = append(args, f.Limit+1)
		rows, err := tx.Query(ctx, `SELECT `+auditColumns+` FROM audit_events WHERE `+where+
			fmt.Sprintf(` ORDER BY at DESC, id DESC LIMIT $%d`, len(args)), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			ev, _, err := scanAudit(rows)
			if err != nil {
				return err
			}
			out = append(out, ev)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(out) > f.Limit {
			out = out[:f.Limit]
			last := out[len(out)-1]
			next = encodeTimeCursor(last.At, last.ID)
		}
		return nil
	})
	return out, next, err
}

// ExportAuditEvents streams every selected event to fn (audit.export).
// The export itself is recorded in the log.
func (s *AuditService) ExportAuditEvents(ctx context.Context, f fieldops.AuditFilter, fn func(*fieldops.AuditEvent) error) error {
	if err := f.Validate(); err != nil {
		return err
	}
	f.After = ""
	return s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.require(fieldops.FlagAuditExport); err != nil {
			return err
		}
		where, args, err := auditWhere(acc.OrgID, f)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+auditColumns+` FROM audit_events WHERE `+where+` ORDER BY at DESC, id DESC`, args...)
		if err != nil {
			return err
		}
		n := 0
		for rows.Next() {
			ev, _, err := scanAudit(rows)
			if err == nil {
				err = fn(ev)
			}
			if err != nil {
				rows.Close()
				return err
			}
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		filter := map[string]any{"actor_user_id": f.ActorUserID, "action": f.Action}
		if !f.From.IsZero() {
			filter["from"] = f.From.UTC()
		}
		if !f.To.IsZero() {
			filter["to"] = f.To.UTC()
		}
		return s.db.audit(ctx, tx, acc, entry{action: "audit.export", targetType: "organisation", targetID: acc.OrgID,
			changes: map[string]any{"rows": n, "filter": filter}})
	})
}

// VerifyChain recomputes the organisation's hash chain and returns the
// sequence number of the first entry that does not match, or 0.
func (s *AuditService) VerifyChain(ctx context.Context) (int64, error) {
	var broken int64
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.load(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.require(fieldops.FlagAuditView); err != nil {
			return err
		}
		broken, err = verifyChain(ctx, tx, acc.OrgID)
		return err
	})
	return broken, err
}

// verifyChain walks one organisation's log in sequence order.
func verifyChain(ctx context.Context, tx pgx.Tx, orgID int64) (int64, error) {
	var (
		prev    []byte
		wantSeq int64 = 1
	)
	for {
		rows, err := tx.Query(ctx, `SELECT `+auditColumns+` FROM audit_events WHERE org_id = $1 AND seq >= $2 ORDER BY seq LIMIT 1000`, orgID, wantSeq)
		if err != nil {
			return 0, err
		}
		n := 0
		for rows.Next() {
			n++
			ev, canon, err := scanAudit(rows)
			if err != nil {
				rows.Close()
				return 0, err
			}
			if ev.Seq != wantSeq || !bytes.Equal(ev.PrevHash, prev) || !bytes.Equal(auditHash(ev, canon), ev.Hash) {
				rows.Close()
				return wantSeq, nil
			}
			prev, wantSeq = ev.Hash, wantSeq+1
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, err
		}
		if n < 1000 {
			break
		}
	}
	// The head must be the last entry: a deleted tail is a break too.
	var head []byte
	var seq int64
	if err := tx.QueryRow(ctx, `SELECT seq, head FROM audit_chains WHERE org_id = $1`, orgID).Scan(&seq, &head); err != nil {
		return 0, err
	}
	if seq != wantSeq-1 || !bytes.Equal(head, prev) {
		return wantSeq, nil
	}
	return 0, nil
}

// encodeTimeCursor and decodeTimeCursor make the opaque keyset cursor of
// lists ordered by a time and an id.
func encodeTimeCursor(t time.Time, id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(t.UnixMicro(), 10) + "." + strconv.FormatInt(id, 10)))
}

func decodeTimeCursor(s string) (time.Time, int64, error) {
	bad := fieldops.Invalid("after", "The page link is not valid; go back to the first page.")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, 0, bad
	}
	ts, ids, ok := strings.Cut(string(b), ".")
	if !ok {
		return time.Time{}, 0, bad
	}
	us, err1 := strconv.ParseInt(ts, 10, 64)
	id, err2 := strconv.ParseInt(ids, 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return time.Time{}, 0, bad
	}
	return time.UnixMicro(us).UTC(), id, nil
}

// ChainReport is the state of one organisation's audit chain.
type ChainReport struct {
	OrgID   int64
	OrgName string
	Events  int64
	// Broken is the sequence number of the first entry that does not
	// match, or 0 when the chain is intact.
	Broken int64
}

// VerifyAllChains checks every organisation's audit chain, for the
// operator's `fieldops audit verify` and the nightly check. It needs no
// actor.
func (db *DB) VerifyAllChains(ctx context.Context) ([]ChainReport, error) {
	rows, err := db.pool.Query(ctx, `SELECT o.id, o.name, c.seq FROM organisations o JOIN audit_chains c ON c.org_id = o.id ORDER BY o.id`)
	if err != nil {
		return nil, translate(err)
	}
	var out []ChainReport
	for rows.Next() {
		var r ChainReport
		if err := rows.Scan(&r.OrgID, &r.OrgName, &r.Events); err != nil {
			rows.Close()
			return nil, translate(err)
		}
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, translate(err)
	}
	for i := range out {
		err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
			var err error
			out[i].Broken, err = verifyChain(ctx, tx, out[i].OrgID)
			return err
		})
		if err != nil {
			return nil, translate(err)
		}
	}
	return out, nil
}
