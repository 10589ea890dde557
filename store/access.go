package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/fieldops/fieldops"
)

// access is the actor's current standing in their organisation, loaded at
// the start of each transaction so that a role change, an override change
// or a removal takes effect on the very next call.
type access struct {
	fieldops.Access
	actor      fieldops.Actor
	name       string
	plan       fieldops.Plan
	extraSeats int
}

// load reads the actor's membership. A member who was removed, or an
// actor without an organisation, is unauthorised. Inside a unit of work
// the membership read by a read-only call is reused by the next call of
// the same actor (unit.acc).
func (db *DB) load(ctx context.Context, tx pgx.Tx) (*access, error) {
	actor, err := fieldops.RequireActor(ctx)
	if err != nil {
		return nil, err
	}
	u, _ := ctx.Value(unitKey{}).(*unit)
	if u != nil && u.acc != nil && u.acc.actor == actor {
		acc := *u.acc
		return &acc, nil
	}
	var (
		role, plan, name string
		overrides        []byte
		extraSeats       int
		ended            bool
	)
	// An actor that came from a session ($3 not empty) is refused when
	// Postgres records the session as revoked, one by one
	// (sessions_revoked) or with all of the member's sessions begun before
	// a time (user_sessions_floor, in this organisation or in all). This is
	// the backstop that keeps a revoked session out even when Redis still
	// (or again) has it; see session.go. It rides on the membership query,
	// so it costs no round trip; it is a column rather than a WHERE
	// condition so that the answer can say the session ended rather than
	// that the membership did.
	err = tx.QueryRow(ctx, `
		SELECT m.role, m.overrides, o.plan, o.extra_seats, u.name,
		       $3 <> '' AND (
		           EXISTS (SELECT 1 FROM sessions_revoked r WHERE r.session_id = $3)
		           OR EXISTS (SELECT 1 FROM user_sessions_floor f
		                      WHERE f.user_id = m.user_id AND f.org_key IN (0, m.org_id) AND f.revoked_before > $4))
		FROM memberships m
		JOIN organisations o ON o.id = m.org_id
		JOIN users u ON u.id = m.user_id
		WHERE m.org_id = $1 AND m.user_id = $2 AND m.status = 'active'`,
		actor.OrgID, actor.UserID, actor.SessionID, actor.SessionStart).Scan(&role, &overrides, &plan, &extraSeats, &name, &ended)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fieldops.Errorf(fieldops.EUNAUTHORIZED, "You are not a member of this organisation any more. Ask its Owner or an Admin to invite you again.")
	}
	if err != nil {
		return nil, fmt.Errorf("load membership: %w", err)
	}
	if ended {
		return nil, fieldops.Errorf(fieldops.EUNAUTHORIZED, "Your session has ended. Please sign in again.")
	}
	acc := &access{actor: actor, name: name, extraSeats: extraSeats}
	acc.OrgID, acc.UserID = actor.OrgID, actor.UserID
	if acc.plan, err = fieldops.FindPlan(plan); err != nil {
		return nil, fmt.Errorf("load membership: %w", err)
	}
	if acc.Role, acc.Grants, err = memberGrants(role, overrides, acc.plan.Overrides); err != nil {
		return nil, fmt.Errorf("load membership: %w", err)
	}
	if u != nil {
		kept := *acc
		u.acc = &kept
	}
	return acc, nil
}

// loadForWrite is load for a method that changes data: it takes the
// organisation's row lock first, so every writer of one organisation
// locks in the same order (organisation, then records, then the audit
// chain) and no two can deadlock, and then reads the membership afresh,
// never from the unit's cache: a session ended or a member removed while
// an update was being handled (photos downloading, say) stops its writes.
// In a unit of work the lock goes in one round trip with the read.
func (db *DB) loadForWrite(ctx context.Context, tx pgx.Tx) (*access, error) {
	actor, err := fieldops.RequireActor(ctx)
	if err != nil {
		return nil, err
	}
	if u, ok := ctx.Value(unitKey{}).(*unit); ok {
		u.acc = nil // read it again now, and after this call, which may change memberships
	}
	if err := lockOrg(ctx, tx, actor.OrgID); err != nil {
		return nil, err
	}
	acc, err := db.load(ctx, tx)
	if u, ok := ctx.Value(unitKey{}).(*unit); ok {
		u.acc = nil
	}
	return acc, err
}

// memberGrants is a member's effective grants from their stored role and
// overrides; overrides count only on plans that have them. Every place
// that judges a member's permissions (the actor's own, or another member's
// to pick recipients or engineers) goes through it.
func memberGrants(roleName string, overrides []byte, planOverrides bool) (fieldops.Role, fieldops.Grants, error) {
	role, err := fieldops.ParseRole(roleName)
	if err != nil {
		return fieldops.RoleNone, fieldops.Grants{}, err
	}
	var ovs []fieldops.Override
	if planOverrides {
		if ovs, err = decodeOverrides(overrides); err != nil {
			return fieldops.RoleNone, fieldops.Grants{}, err
		}
	}
	return role, fieldops.EffectiveGrants(role, ovs), nil
}

// check allows the action or explains the refusal: a member without the
// flag is told they lack it; a member whose scope is own and who asks
// about someone else's record is told it was not found, as it would be
// for another organisation's record.
func (acc *access) check(f fieldops.Flag, r *fieldops.Resource, what string) error {
	if acc.Can(f, r) {
		return nil
	}
	if r.OrgID != acc.OrgID || acc.Scope(f) == fieldops.ScopeOwn {
		return notFound(what)
	}
	return acc.Require(f, r)
}

// require checks an organisation-wide action (no particular record).
func (acc *access) require(f fieldops.Flag) error {
	return acc.Require(f, &fieldops.Resource{OrgID: acc.OrgID})
}

// requireCreate checks a flag for a record the member is about to create:
// a scope of own suffices, since they will have created it.
func (acc *access) requireCreate(f fieldops.Flag) error {
	return acc.Require(f, &fieldops.Resource{OrgID: acc.OrgID, CreatedBy: acc.UserID})
}

// requireAny checks that the member holds f with any scope; lists then
// narrow to what the scope allows.
func (acc *access) requireAny(f fieldops.Flag) error {
	if acc.Scope(f) != fieldops.ScopeNone {
		return nil
	}
	return acc.require(f)
}

// decodeOverrides reads the memberships.overrides object.
func decodeOverrides(raw []byte) ([]fieldops.Override, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("overrides: %w", err)
	}
	out := make([]fieldops.Override, 0, len(m))
	for _, f := range fieldops.AllFlags() { // stable order
		s, ok := m[f.String()]
		if !ok {
			continue
		}
		sc, err := fieldops.ParseScope(s)
		if err != nil {
			return nil, fmt.Errorf("overrides: %w", err)
		}
		out = append(out, fieldops.Override{Flag: f, Scope: sc})
	}
	return out, nil
}

// encodeOverrides writes the memberships.overrides object.
func encodeOverrides(ovs []fieldops.Override) []byte {
	b, _ := json.Marshal(overrideMap(ovs))
	return b
}

// lockOrg serialises changes that count seats or owners in one
// organisation.
func lockOrg(ctx context.Context, tx pgx.Tx, orgID int64) error {
	// In a unit of work it goes with the call's next statement: still
	// first, so the lock order holds.
	return execHeld(ctx, tx, `SELECT 1 FROM organisations WHERE id = $1 FOR NO KEY UPDATE`, orgID)
}
