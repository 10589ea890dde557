package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fieldops/fieldops"
)

// InvitationService implements fieldops.InvitationService. It signs the
// new member in through the session service once they have accepted.
type InvitationService struct {
	db       *DB
	sessions fieldops.SessionService
}

var _ fieldops.InvitationService = (*InvitationService)(nil)

// NewInvitationService returns the invitation service.
func NewInvitationService(db *DB, sessions fieldops.SessionService) *InvitationService {
	return &InvitationService{db: db, sessions: sessions}
}

// invitationOpen is the condition of an invitation that holds the slot of
// the index invitations_one_pending: not accepted, revoked or replaced. It
// may have expired.
const invitationOpen = `i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.replaced_at IS NULL`

const invitationColumns = `i.id, i.org_id, o.name, o.time_zone, i.email, i.role, i.overrides, i.invited_by, u.name,
	i.created_at, i.expires_at, i.accepted_at, i.revoked_at, i.replaced_at`

const invitationFrom = ` FROM invitations i
	JOIN organisations o ON o.id = i.org_id
	JOIN users u ON u.id = i.invited_by`

// invitation is a row with what the messages about it need.
type invitation struct {
	fieldops.Invitation
	timeZone   string
	acceptedAt *time.Time
	revokedAt  *time.Time
	replacedAt *time.Time
}

func scanInvitation(row pgx.Row) (*invitation, error) {
	inv := &invitation{}
	var role string
	var overrides []byte
	if err := row.Scan(&inv.ID, &inv.OrgID, &inv.OrgName, &inv.timeZone, &inv.Email, &role, &overrides, &inv.InvitedBy,
		&inv.InvitedByName, &inv.CreatedAt, &inv.ExpiresAt, &inv.acceptedAt, &inv.revokedAt, &inv.replacedAt); err != nil {
		return nil, err
	}
	var err error
	if inv.Role, err = fieldops.ParseRole(role); err != nil {
		return nil, err
	}
	if inv.Overrides, err = decodeOverrides(overrides); err != nil {
		return nil, err
	}
	return inv, nil
}

// statusAt derives the status as the view invitations_with_status does,
// against the store's clock.
func (inv *invitation) statusAt(now time.Time) string {
	switch {
	case inv.acceptedAt != nil:
		return fieldops.InvitationAccepted
	case inv.revokedAt != nil:
		return fieldops.InvitationRevoked
	case inv.replacedAt != nil:
		return fieldops.InvitationReplaced
	case !inv.ExpiresAt.After(now):
		return fieldops.InvitationExpired
	}
	return fieldops.InvitationPending
}

// public returns the domain value with its status at now.
func (inv *invitation) public(now time.Time) *fieldops.Invitation {
	out := inv.Invitation
	out.Status = inv.statusAt(now)
	return &out
}

// when formats a time for a message in the organisation's time zone:
// "14:05 on Monday 9 March 2026".
func (inv *invitation) when(t time.Time) string {
	loc, err := time.LoadLocation(inv.timeZone)
	if err != nil || inv.timeZone == "" {
		loc = time.UTC // organisations always have a valid zone; UTC is the safe fallback
	}
	return t.In(loc).Format("15:04 on Monday 2 January 2006")
}

// linkError explains to the holder of a link why it does not work, and
// whom to ask; nil when the invitation can still be accepted.
func (inv *invitation) linkError(now time.Time) error {
	switch inv.statusAt(now) {
	case fieldops.InvitationAccepted:
		return fieldops.Errorf(fieldops.ECONFLICT, "This invitation has already been used. Sign in instead, or ask %s at %s for a new one.",
			inv.InvitedByName, inv.OrgName)
	case fieldops.InvitationRevoked:
		return fieldops.Errorf(fieldops.ECONFLICT, "This invitation was withdrawn by %s. Ask %s if you still need access.",
			inv.OrgName, inv.InvitedByName)
	case fieldops.InvitationReplaced:
		return fieldops.Errorf(fieldops.ECONFLICT, "A newer invitation was sent to you; use the link in the latest e-mail. If you can't find it, ask %s at %s to send it again.",
			inv.InvitedByName, inv.OrgName)
	case fieldops.InvitationExpired:
		return fieldops.Errorf(fieldops.ECONFLICT, "This invitation expired at %s. Ask %s at %s to send a new one.",
			inv.when(inv.ExpiresAt), inv.InvitedByName, inv.OrgName)
	}
	return nil
}

// stateError explains to the organisation's staff why an invitation can
// no longer be resent or revoked; nil while it is pending.
func (inv *invitation) stateError(now time.Time) error {
	var msg string
	switch inv.statusAt(now) {
	case fieldops.InvitationAccepted:
		msg = fmt.Sprintf("The invitation to %s was already accepted at %s: they are on the team.", inv.Email, inv.when(*inv.acceptedAt))
	case fieldops.InvitationRevoked:
		msg = fmt.Sprintf("The invitation to %s was revoked at %s. Invite them again if they still need access.", inv.Email, inv.when(*inv.revokedAt))
	case fieldops.InvitationReplaced:
		msg = fmt.Sprintf("The invitation to %s was replaced by a newer one at %s. Resend or revoke the newer invitation instead.", inv.Email, inv.when(*inv.replacedAt))
	case fieldops.InvitationExpired:
		msg = fmt.Sprintf("The invitation to %s expired at %s. Invite them again to send a new link.", inv.Email, inv.when(inv.ExpiresAt))
	default:
		return nil
	}
	return fieldops.Errorf(fieldops.ECONFLICT, "%s", msg)
}

// findInvitation returns one invitation of the organisation, optionally
// locking its row.
func findInvitation(ctx context.Context, tx pgx.Tx, orgID, id int64, lock bool) (*invitation, error) {
	q := `SELECT ` + invitationColumns + invitationFrom + ` WHERE i.org_id = $1 AND i.id = $2`
	if lock {
		q += ` FOR UPDATE OF i`
	}
	inv, err := scanInvitation(tx.QueryRow(ctx, q, orgID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("Invitation")
	}
	return inv, err
}

// findInvitationByHash returns the invitation of a token's hash.
func findInvitationByHash(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, hash []byte, lock bool) (*invitation, error) {
	sql := `SELECT ` + invitationColumns + invitationFrom + ` WHERE i.token_hash = $1`
	if lock {
		sql += ` FOR UPDATE OF i`
	}
	inv, err := scanInvitation(q.QueryRow(ctx, sql, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errLinkNotValid
	}
	return inv, err
}

// errLinkNotValid answers a malformed or unknown token. It says no more,
// so that a guessed token learns nothing.
var errLinkNotValid = fieldops.Errorf(fieldops.ENOTFOUND,
	"This invitation link is not valid. Ask the person who invited you to send a new one.")

// insertInvitation stores a new invitation and returns its id and the
// secret token of its link; only the token's hash is kept.
func insertInvitation(ctx context.Context, tx pgx.Tx, orgID int64, email string, role fieldops.Role, overrides []fieldops.Override,
	invitedBy int64, now time.Time) (int64, string, error) {
	token, hash := newToken(prefixInvitation)
	var id int64
	err := tx.QueryRow(ctx, `
		INSERT INTO invitations (org_id, email, role, overrides, token_hash, invited_by, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
		orgID, email, role.String(), encodeOverrides(overrides), hash, invitedBy, now, now.Add(fieldops.InvitationTTL)).Scan(&id)
	if err != nil {
		var pg *pgconn.PgError
		if errors.As(err, &pg) && pg.ConstraintName == "invitations_one_pending" {
			return 0, "", &fieldops.Error{Code: fieldops.ECONFLICT, Field: "email", Err: err,
				Message: fmt.Sprintf("%s already has a pending invitation. Resend it for a new link, or revoke it first.", email)}
		}
		return 0, "", err
	}
	return id, token, nil
}

// replaceInvitation marks an open invitation replaced by a new one to the
// same address: first replaced_at, which frees the slot of
// invitations_one_pending, then (once the new row exists) replaced_by. It
// returns the new row's id and token.
func replaceInvitation(ctx context.Context, tx pgx.Tx, old *invitation, role fieldops.Role, overrides []fieldops.Override,
	invitedBy int64, now time.Time) (int64, string, error) {
	if _, err := tx.Exec(ctx, `UPDATE invitations SET replaced_at = $3 WHERE org_id = $1 AND id = $2`, old.OrgID, old.ID, now); err != nil {
		return 0, "", err
	}
	id, token, err := insertInvitation(ctx, tx, old.OrgID, old.Email, role, overrides, invitedBy, now)
	if err != nil {
		return 0, "", err
	}
	if _, err := tx.Exec(ctx, `UPDATE invitations SET replaced_by = $3 WHERE org_id = $1 AND id = $2`, old.OrgID, old.ID, id); err != nil {
		return 0, "", err
	}
	return id, token, nil
}

// checkNotMember refuses to invite an active member of the organisation.
func checkNotMember(ctx context.Context, tx pgx.Tx, orgID int64, email string) error {
	var member bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE m.org_id = $1 AND u.email = $2 AND m.status = 'active')`, orgID, email).Scan(&member); err != nil {
		return err
	}
	if member {
		return &fieldops.Error{Code: fieldops.ECONFLICT, Field: "email", Message: fmt.Sprintf("%s is already a member of this organisation.", email)}
	}
	return nil
}

// CreateInvitation invites someone by e-mail (team.invite). The role can
// be no higher than the actor's own rights and must be on the plan; the
// invitation takes a seat until it is accepted, revoked or expires. An
// expired invitation to the same address is marked replaced by the new
// one.
func (s *InvitationService) CreateInvitation(ctx context.Context, n fieldops.NewInvitation) (*fieldops.Invitation, string, error) {
	email, err := fieldops.NormaliseEmail(n.Email)
	if err != nil {
		return nil, "", err
	}
	if n.Role < fieldops.RoleOwner || n.Role > fieldops.RoleAccountant {
		return nil, "", fieldops.Invalid("role", "Choose a role: owner, admin, manager, engineer, office_staff, read_only or accountant.")
	}
	var (
		out   *fieldops.Invitation
		token string
	)
	err = s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.require(fieldops.FlagTeamInvite); err != nil {
			return err
		}
		if err := fieldops.CheckAssignRole(acc.plan, acc.Role, acc.Grants, n.Role); err != nil {
			return err
		}
		if err := fieldops.CheckOverrides(acc.plan, acc.Grants, n.Role, n.Overrides); err != nil {
			return err
		}
		if err := checkNotMember(ctx, tx, acc.OrgID, email); err != nil {
			return err
		}
		now := s.db.now()
		var stale *invitation
		var openID int64
		err = tx.QueryRow(ctx, `SELECT i.id FROM invitations i WHERE i.org_id = $1 AND i.email = $2 AND `+invitationOpen+` FOR UPDATE`,
			acc.OrgID, email).Scan(&openID)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		default:
			if stale, err = findInvitation(ctx, tx, acc.OrgID, openID, false); err != nil {
				return err
			}
			if stale.statusAt(now) == fieldops.InvitationPending {
				return &fieldops.Error{Code: fieldops.ECONFLICT, Field: "email",
					Message: fmt.Sprintf("%s already has a pending invitation, sent at %s by %s. Resend it for a new link, or revoke it first.",
						email, stale.when(stale.CreatedAt), stale.InvitedByName)}
			}
		}
		used, err := seatsUsed(ctx, tx, acc.OrgID)
		if err != nil {
			return err
		}
		if err := fieldops.CheckSeats(acc.plan, acc.extraSeats, used, 1); err != nil {
			return err
		}
		var id int64
		changes := map[string]any{"email": email, "role": n.Role.String(), "overrides": overrideMap(n.Overrides),
			"expires_at": now.Add(fieldops.InvitationTTL)}
		if stale != nil {
			// The expired invitation still holds the address's slot:
			// it ends as replaced by this one, in this transaction.
			if id, token, err = replaceInvitation(ctx, tx, stale, n.Role, n.Overrides, acc.UserID, now); err != nil {
				return err
			}
			changes["replaces"] = stale.ID
		} else if id, token, err = insertInvitation(ctx, tx, acc.OrgID, email, n.Role, n.Overrides, acc.UserID, now); err != nil {
			return err
		}
		if err := s.db.audit(ctx, tx, acc, entry{action: "invite.create", targetType: "invitation", targetID: id, changes: changes}); err != nil {
			return err
		}
		inv, err := findInvitation(ctx, tx, acc.OrgID, id, false)
		if err != nil {
			return err
		}
		out = inv.public(now)
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return out, token, nil
}

// ResendInvitation replaces a pending invitation with a new one, with a
// new link and a fresh seven days (team.invite); the old link then
// answers that a newer invitation was sent. The new invitation is the
// resender's: they must be able to offer its role.
func (s *InvitationService) ResendInvitation(ctx context.Context, id int64) (*fieldops.Invitation, string, error) {
	var (
		out   *fieldops.Invitation
		token string
	)
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.require(fieldops.FlagTeamInvite); err != nil {
			return err
		}
		old, err := findInvitation(ctx, tx, acc.OrgID, id, true)
		if err != nil {
			return err
		}
		now := s.db.now()
		if err := old.stateError(now); err != nil {
			return err
		}
		if err := checkNotMember(ctx, tx, acc.OrgID, old.Email); err != nil {
			return err // added directly since: revoke the invitation instead
		}
		if err := fieldops.CheckAssignRole(acc.plan, acc.Role, acc.Grants, old.Role); err != nil {
			return err
		}
		if err := fieldops.CheckOverrides(acc.plan, acc.Grants, old.Role, old.Overrides); err != nil {
			return err
		}
		newID, tok, err := replaceInvitation(ctx, tx, old, old.Role, old.Overrides, acc.UserID, now)
		if err != nil {
			return err
		}
		if err := s.db.audit(ctx, tx, acc, entry{action: "invite.resend", targetType: "invitation", targetID: newID,
			changes: map[string]any{"email": old.Email, "role": old.Role.String(), "replaces": old.ID,
				"expires_at": now.Add(fieldops.InvitationTTL)}}); err != nil {
			return err
		}
		inv, err := findInvitation(ctx, tx, acc.OrgID, newID, false)
		if err != nil {
			return err
		}
		out, token = inv.public(now), tok
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return out, token, nil
}

// RevokeInvitation withdraws a pending invitation (team.invite); its
// seat is free at once.
func (s *InvitationService) RevokeInvitation(ctx context.Context, id int64) error {
	return s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.require(fieldops.FlagTeamInvite); err != nil {
			return err
		}
		inv, err := findInvitation(ctx, tx, acc.OrgID, id, true)
		if err != nil {
			return err
		}
		now := s.db.now()
		if err := inv.stateError(now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE invitations SET revoked_at = $3, revoked_by = $4 WHERE org_id = $1 AND id = $2`,
			acc.OrgID, id, now, acc.UserID); err != nil {
			return err
		}
		return s.db.audit(ctx, tx, acc, entry{action: "invite.revoke", targetType: "invitation", targetID: id,
			changes: map[string]any{"email": inv.Email, "role": inv.Role.String()}})
	})
}

// FindInvitations lists the pending invitations, newest first
// (team.view).
func (s *InvitationService) FindInvitations(ctx context.Context) ([]*fieldops.Invitation, error) {
	var out []*fieldops.Invitation
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.load(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.require(fieldops.FlagTeamView); err != nil {
			return err
		}
		now := s.db.now()
		rows, err := tx.Query(ctx, `SELECT `+invitationColumns+invitationFrom+`
			WHERE i.org_id = $1 AND `+invitationOpen+` AND i.expires_at > $2
			ORDER BY i.created_at DESC, i.id DESC`, acc.OrgID, now)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			inv, err := scanInvitation(rows)
			if err != nil {
				return err
			}
			out = append(out, inv.public(now))
		}
		return rows.Err()
	})
	return out, err
}

// FindInvitationByToken returns the pending invitation of a link. It
// needs no actor: the token is the credential. A link that can no longer
// be used is an error saying why and whom to ask.
func (s *InvitationService) FindInvitationByToken(ctx context.Context, token string) (*fieldops.Invitation, error) {
	if !tokenHasPrefix(token, prefixInvitation) {
		return nil, errLinkNotValid
	}
	inv, err := findInvitationByHash(ctx, s.db.pool, hashToken(token), false)
	if err != nil {
		return nil, translate(err)
	}
	now := s.db.now()
	if err := inv.linkError(now); err != nil {
		return nil, err
	}
	return inv.public(now), nil
}

// inviteeAccount is the user an invitation's address belongs to, if any.
type inviteeAccount struct {
	id           int64 // 0: no account yet
	name         string
	passwordHash string // "": the account has no password
	totp         bool
}

func findInviteeAccount(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, email string, lock bool) (inviteeAccount, error) {
	sql := `SELECT id, name, COALESCE(password_hash, ''), totp_enabled_at IS NOT NULL FROM users WHERE email = $1`
	if lock {
		sql += ` FOR UPDATE`
	}
	var a inviteeAccount
	err := q.QueryRow(ctx, sql, email).Scan(&a.id, &a.name, &a.passwordHash, &a.totp)
	if errors.Is(err, pgx.ErrNoRows) {
		return inviteeAccount{}, nil
	}
	return a, err
}

// checkInviteeAccount decides how the invitee joins: an existing account must be
// proven with its password; for a new one the name and password are
// checked and the password hashed. It returns the hash for a new account.
func checkInviteeAccount(acct inviteeAccount, inv *invitation, a fieldops.Accept) (string, error) {
	if acct.id == 0 {
		if a.Name == "" {
			return "", fieldops.Invalid("name", "Enter your name, as your team will see it.")
		}
		if len([]rune(a.Name)) > 200 {
			return "", fieldops.Invalid("name", "Your name can be at most 200 characters.")
		}
		return HashPassword(a.Password)
	}
	if acct.passwordHash == "" {
		// Setting a password here would let whoever holds the link (the
		// inviter has it when e-mail is off) take over the account.
		return "", &fieldops.Error{Code: fieldops.EUNAUTHORIZED, Field: "password",
			Message: fmt.Sprintf("An account with this e-mail already exists, but it has no password to confirm that it is yours. Ask %s at %s to add you to the team directly instead.",
				inv.InvitedByName, inv.OrgName)}
	}
	if !VerifyPassword(acct.passwordHash, a.Password) {
		return "", &fieldops.Error{Code: fieldops.EUNAUTHORIZED, Field: "password",
			Message: "An account with this e-mail already exists; enter its password to join."}
	}
	return "", nil
}

// AcceptInvitation makes the invitee's account, or joins their existing
// one after checking its password, adds them to the organisation with the
// invitation's role and overrides, and signs them in on the web. The
// password work is done before the transaction; inside it the invitation
// row is locked and everything is checked again, so of two acceptances of
// one link exactly one succeeds.
//
// A member whose account already has two-factor sign-in on is not signed
// in here (that would skip their second factor): the result then has no
// Session and they sign in as usual.
func (s *InvitationService) AcceptInvitation(ctx context.Context, token string, a fieldops.Accept) (*fieldops.SignInResult, error) {
	if !tokenHasPrefix(token, prefixInvitation) {
		return nil, errLinkNotValid
	}
	a.Name = strings.TrimSpace(a.Name)
	hash := hashToken(token)

	// Before the transaction: the cheap refusals, and the slow password
	// hash or check, so that the organisation is not locked meanwhile.
	pre, err := findInvitationByHash(ctx, s.db.pool, hash, false)
	if err != nil {
		return nil, translate(err)
	}
	if err := pre.linkError(s.db.now()); err != nil {
		return nil, err
	}
	acct, err := findInviteeAccount(ctx, s.db.pool, pre.Email, false)
	if err != nil {
		return nil, translate(err)
	}
	newHash, err := checkInviteeAccount(acct, pre, a)
	if err != nil {
		if fieldops.ErrorCode(err) == fieldops.EUNAUTHORIZED && acct.id != 0 && acct.passwordHash != "" {
			return nil, s.countWrongPassword(ctx, pre, err)
		}
		return nil, err
	}

	var (
		inv       *invitation
		userID    int64
		mustEnrol bool
		hasTOTP   bool
	)
	err = s.db.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockOrg(ctx, tx, pre.OrgID); err != nil {
			return err
		}
		var err error
		if inv, err = findInvitationByHash(ctx, tx, hash, true); err != nil {
			return err
		}
		now := s.db.now()
		if err := inv.linkError(now); err != nil {
			return err
		}
		org, err := findOrganisation(ctx, tx, inv.OrgID)
		if err != nil {
			return err
		}
		plan, err := fieldops.FindPlan(org.Plan)
		if err != nil {
			return err
		}
		if !plan.AllowsRole(inv.Role) {
			return fieldops.Errorf(fieldops.ELIMIT, "%s is now on the %s plan, which does not offer the %s role. Ask %s to invite you again with another role.",
				inv.OrgName, plan.Label(), inv.Role.Label(), inv.InvitedByName)
		}
		cur, err := findInviteeAccount(ctx, tx, inv.Email, true)
		if err != nil {
			return err
		}
		if cur != acct {
			// The account changed since the check above (made by another
			// acceptance, or its password changed): check again.
			if newHash, err = checkInviteeAccount(cur, inv, a); err != nil {
				return err
			}
			acct = cur
		}
		userID, hasTOTP = acct.id, acct.totp
		label := acct.name
		if userID == 0 {
			if err := tx.QueryRow(ctx, `INSERT INTO users (email, name, password_hash) VALUES ($1, $2, $3) RETURNING id`,
				inv.Email, a.Name, newHash).Scan(&userID); err != nil {
				return err
			}
			label = a.Name
		}
		tag, err := tx.Exec(ctx, `
			INSERT INTO memberships (org_id, user_id, role, overrides) VALUES ($1, $2, $3, $4)
			ON CONFLICT (org_id, user_id) DO UPDATE
			SET role = EXCLUDED.role, overrides = EXCLUDED.overrides, status = 'active', removed_at = NULL, updated_at = now()
			WHERE memberships.status = 'removed'`,
			inv.OrgID, userID, inv.Role.String(), encodeOverrides(inv.Overrides))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fieldops.Errorf(fieldops.ECONFLICT, "You are already a member of %s. Sign in instead.", inv.OrgName)
		}
		// The single-use guard in one statement, as well as the lock.
		tag, err = tx.Exec(ctx, `UPDATE invitations i SET accepted_at = $3, accepted_user_id = $4
			WHERE i.org_id = $1 AND i.id = $2 AND `+invitationOpen+` AND i.expires_at > $3`, inv.OrgID, inv.ID, now, userID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return fieldops.Errorf(fieldops.ECONFLICT, "This invitation has already been used. Sign in instead, or ask %s at %s for a new one.",
				inv.InvitedByName, inv.OrgName)
		}
		if err := s.db.appendAudit(ctx, tx, inv.OrgID, userID, label, fieldops.ChannelWeb, a.IP, entry{
			action: "invite.accept", targetType: "invitation", targetID: inv.ID,
			changes: map[string]any{"email": inv.Email, "role": inv.Role.String(), "overrides": overrideMap(inv.Overrides),
				"user_id": userID, "new_account": acct.id == 0, "invited_by": inv.InvitedBy},
		}); err != nil {
			return err
		}
		ovs := inv.Overrides
		if p, err := fieldops.FindPlan(org.Plan); err != nil || !p.Overrides {
			ovs = nil
		}
		mustEnrol = fieldops.TwoFactorRequired(inv.Role, fieldops.EffectiveGrants(inv.Role, ovs), org.Require2FARoles)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if hasTOTP {
		return &fieldops.SignInResult{}, nil
	}
	sess, tok, err := s.sessions.CreateSession(ctx, fieldops.NewSession{
		OrgID: inv.OrgID, UserID: userID, Channel: fieldops.ChannelWeb, UserAgent: a.UserAgent, IP: a.IP, TwoFactor: false,
	})
	if err != nil {
		return nil, &fieldops.Error{Code: fieldops.ErrorCode(err), Err: err,
			Message: fmt.Sprintf("You have joined %s, but we could not sign you in just now. Sign in with your e-mail address and password.", inv.OrgName)}
	}
	return &fieldops.SignInResult{Session: sess, Token: tok, MustEnrol: mustEnrol}, nil
}

// maxInviteAttempts is how many wrong passwords for an existing account an
// invitation link takes before it is withdrawn.
const maxInviteAttempts = 5

// countWrongPassword records a wrong password typed on the link; the fifth
// withdraws the invitation, so whoever holds a link cannot keep guessing
// the password of the account it names.
func (s *InvitationService) countWrongPassword(ctx context.Context, inv *invitation, wrong error) error {
	withdrawn := false
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockOrg(ctx, tx, inv.OrgID); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `UPDATE invitations SET failed_attempts = failed_attempts + 1
			WHERE org_id = $1 AND id = $2 RETURNING failed_attempts`, inv.OrgID, inv.ID).Scan(&n); err != nil {
			return err
		}
		if n < maxInviteAttempts {
			return nil
		}
		tag, err := tx.Exec(ctx, `UPDATE invitations SET revoked_at = $3
			WHERE org_id = $1 AND id = $2 AND accepted_at IS NULL AND revoked_at IS NULL AND replaced_at IS NULL`, inv.OrgID, inv.ID, s.db.now())
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		withdrawn = true
		return s.db.appendAudit(ctx, tx, inv.OrgID, 0, "fieldops", fieldops.ChannelSystem, netip.Addr{}, entry{
			action: "invite.revoke", targetType: "invitation", targetID: inv.ID,
			changes: map[string]any{"email": inv.Email, "reason": "too_many_wrong_passwords"}})
	})
	if err != nil {
		return err
	}
	if withdrawn {
		return fieldops.Errorf(fieldops.ELIMIT, "Too many wrong passwords: this invitation has been withdrawn. Ask %s at %s to send a new one.",
			inv.InvitedByName, inv.OrgName)
	}
	return wrong
}
