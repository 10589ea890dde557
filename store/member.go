package store

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/fieldops/fieldops"
)

// pendingInvitation is the condition for an invitation that still takes a
// seat.
const pendingInvitation = `accepted_at IS NULL AND revoked_at IS NULL AND replaced_by IS NULL AND expires_at > now()`

// MemberService implements fieldops.MemberService.
type MemberService struct {
	db *DB
	// Sessions, when set, has the Redis side of a removed member's
	// sessions deleted at once. Without it they are still refused: the
	// removal records a revocation floor that every service call checks.
	Sessions *SessionService
}

var _ fieldops.MemberService = (*MemberService)(nil)

// NewMemberService returns the member service.
func NewMemberService(db *DB) *MemberService { return &MemberService{db: db} }

const memberColumns = `m.org_id, m.user_id, u.email, u.name, m.role, m.overrides, m.working_minutes, m.colour,
	u.totp_enabled_at IS NOT NULL,
	EXISTS (SELECT 1 FROM telegram_links t WHERE t.org_id = m.org_id AND t.user_id = m.user_id AND t.active),
	m.last_seen_at, m.created_at`

func scanMember(row pgx.Row) (*fieldops.Member, error) {
	m := &fieldops.Member{}
	var role string
	var overrides []byte
	var minutes []int32
	if err := row.Scan(&m.OrgID, &m.UserID, &m.Email, &m.Name, &role, &overrides, &minutes, &m.Colour,
		&m.TOTPEnabled, &m.TelegramLinked, &m.LastSeenAt, &m.CreatedAt); err != nil {
		return nil, err
	}
	var err error
	if m.Role, err = fieldops.ParseRole(role); err != nil {
		return nil, err
	}
	if m.Overrides, err = decodeOverrides(overrides); err != nil {
		return nil, err
	}
	for i := 0; i < 7 && i < len(minutes); i++ {
		m.WorkingMinutes[i] = int(minutes[i])
	}
	return m, nil
}

// findMember returns an active member of the organisation.
func findMember(ctx context.Context, tx pgx.Tx, orgID, userID int64) (*fieldops.Member, error) {
	m, err := scanMember(tx.QueryRow(ctx, `SELECT `+memberColumns+` FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE m.org_id = $1 AND m.user_id = $2 AND m.status = 'active'`, orgID, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("Team member")
	}
	return m, err
}

// FindMembers lists the team (team.view).
func (s *MemberService) FindMembers(ctx context.Context, f fieldops.MemberFilter) ([]*fieldops.Member, error) {
	var out []*fieldops.Member
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.load(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.require(fieldops.FlagTeamView); err != nil {
			return err
		}
		role := ""
		if f.Role != fieldops.RoleNone {
			role = f.Role.String()
		}
		rows, err := tx.Query(ctx, `SELECT `+memberColumns+` FROM memberships m JOIN users u ON u.id = m.user_id
			WHERE m.org_id = $1 AND ($2 OR m.status = 'active') AND ($3 = '' OR m.role = $3)
			ORDER BY lower(u.name), u.id`, acc.OrgID, f.IncludeRemoved, role)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			m, err := scanMember(rows)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return rows.Err()
	})
	return out, err
}

// FindMemberByID returns one member: anyone may see themselves, team.view
// sees everyone.
func (s *MemberService) FindMemberByID(ctx context.Context, userID int64) (*fieldops.Member, error) {
	var m *fieldops.Member
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.load(ctx, tx)
		if err != nil {
			return err
		}
		if userID != acc.UserID {
			if err := acc.require(fieldops.FlagTeamView); err != nil {
				return err
			}
		}
		m, err = findMember(ctx, tx, acc.OrgID, userID)
		return err
	})
	return m, err
}

// AddMember puts a person in the organisation (team.invite), creating
// their account when they have none. The role can be no higher than the
// actor's own rights, the plan must offer it, and a seat must be free.
func (s *MemberService) AddMember(ctx context.Context, n fieldops.NewMember) (*fieldops.Member, error) {
	if err := n.Validate(); err != nil {
		return nil, err
	}
	var m *fieldops.Member
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
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
		if len(n.Overrides) > 0 {
			if err := fieldops.CheckOverrides(acc.plan, acc.Grants, n.Role, n.Overrides); err != nil {
				return err
			}
		}
		used, err := seatsUsed(ctx, tx, acc.OrgID)
		if err != nil {
			return err
		}
		if err := fieldops.CheckSeats(acc.plan, acc.extraSeats, used, 1); err != nil {
			return err
		}
		var userID int64
		err = tx.QueryRow(ctx, `SELECT id FROM users WHERE email = $1`, n.Email).Scan(&userID)
		if errors.Is(err, pgx.ErrNoRows) {
			err = tx.QueryRow(ctx, `INSERT INTO users (email, name) VALUES ($1, $2) RETURNING id`, n.Email, n.Name).Scan(&userID)
		}
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `
			INSERT INTO memberships (org_id, user_id, role, overrides) VALUES ($1, $2, $3, $4)
			ON CONFLICT (org_id, user_id) DO UPDATE
			SET role = EXCLUDED.role, overrides = EXCLUDED.overrides, status = 'active', removed_at = NULL, updated_at = now()
			WHERE memberships.status = 'removed'`,
			acc.OrgID, userID, n.Role.String(), encodeOverrides(n.Overrides))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return &fieldops.Error{Code: fieldops.ECONFLICT, Field: "email", Message: fmt.Sprintf("%s is already a member of this organisation.", n.Email)}
		}
		if err := s.db.audit(ctx, tx, acc, entry{action: "member.add", targetType: "member", targetID: userID,
			changes: map[string]any{"email": n.Email, "role": n.Role.String(), "overrides": overrideMap(n.Overrides)}}); err != nil {
			return err
		}
		m, err = findMember(ctx, tx, acc.OrgID, userID)
		return err
	})
	return m, err
}

// ChangeRole gives a member another role (team.change_role), keeping the
// owner protections and at least one Owner.
func (s *MemberService) ChangeRole(ctx context.Context, userID int64, role fieldops.Role) (*fieldops.Member, error) {
	if role < fieldops.RoleOwner || role > fieldops.RoleAccountant {
		return nil, fieldops.Invalid("role", "Choose a role: owner, admin, manager, engineer, office_staff, read_only or accountant.")
	}
	var m *fieldops.Member
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.require(fieldops.FlagTeamChangeRole); err != nil {
			return err
		}
		target, err := findMember(ctx, tx, acc.OrgID, userID)
		if err != nil {
			return err
		}
		if target.Role == role {
			m = target
			return nil
		}
		if err := fieldops.CheckManageMember(acc.Role, target.Role); err != nil {
			return err
		}
		if err := fieldops.CheckAssignRole(acc.plan, acc.Role, acc.Grants, role); err != nil {
			return err
		}
		if target.Role == fieldops.RoleOwner {
			if err := checkOwnersAfterLosing(ctx, tx, acc.OrgID); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE memberships SET role = $3, updated_at = now() WHERE org_id = $1 AND user_id = $2`,
			acc.OrgID, userID, role.String()); err != nil {
			return err
		}
		if err := s.db.audit(ctx, tx, acc, entry{action: "member.role_change", targetType: "member", targetID: userID,
			changes: map[string]any{"role": change{From: target.Role.String(), To: role.String()}}}); err != nil {
			return err
		}
		m, err = findMember(ctx, tx, acc.OrgID, userID)
		return err
	})
	return m, err
}

// SetOverrides replaces a member's per-user permissions
// (team.edit_permissions). Nobody grants more than they hold.
func (s *MemberService) SetOverrides(ctx context.Context, userID int64, overrides []fieldops.Override) (*fieldops.Member, error) {
	var m *fieldops.Member
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.require(fieldops.FlagTeamEditPermissions); err != nil {
			return err
		}
		target, err := findMember(ctx, tx, acc.OrgID, userID)
		if err != nil {
			return err
		}
		if err := fieldops.CheckManageMember(acc.Role, target.Role); err != nil {
			return err
		}
		if len(overrides) > 0 {
			if err := fieldops.CheckOverrides(acc.plan, acc.Grants, target.Role, overrides); err != nil {
				return err
			}
		}
		if err := checkWidening(acc, target, overrides); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE memberships SET overrides = $3, updated_at = now() WHERE org_id = $1 AND user_id = $2`,
			acc.OrgID, userID, encodeOverrides(overrides)); err != nil {
			return err
		}
		if err := s.db.audit(ctx, tx, acc, entry{action: "member.overrides_change", targetType: "member", targetID: userID,
			changes: map[string]any{"overrides": change{From: overrideMap(target.Overrides), To: overrideMap(overrides)}}}); err != nil {
			return err
		}
		m, err = findMember(ctx, tx, acc.OrgID, userID)
		return err
	})
	return m, err
}

// TransferOwnership hands the organisation to another member
// (org.transfer_ownership): they become an Owner and the actor an Admin,
// so there is always at least one Owner.
func (s *MemberService) TransferOwnership(ctx context.Context, toUserID int64) (*fieldops.Member, error) {
	var m *fieldops.Member
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.require(fieldops.FlagOrgTransferOwnership); err != nil {
			return err
		}
		if toUserID == acc.UserID {
			return fieldops.Invalid("user_id", "Choose another member to hand the organisation to.")
		}
		target, err := findMember(ctx, tx, acc.OrgID, toUserID)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE memberships SET role = 'owner', overrides = '{}', updated_at = now() WHERE org_id = $1 AND user_id = $2`,
			acc.OrgID, toUserID); err != nil {
			return err
		}
		// The previous Owner stays as an Admin, or as Office Staff on a
		// plan without Admins.
		stepDown := fieldops.RoleAdmin
		if !acc.plan.AllowsRole(stepDown) {
			stepDown = fieldops.RoleOfficeStaff
		}
		if _, err := tx.Exec(ctx, `UPDATE memberships SET role = $3, updated_at = now() WHERE org_id = $1 AND user_id = $2`,
			acc.OrgID, acc.UserID, stepDown.String()); err != nil {
			return err
		}
		if err := s.db.audit(ctx, tx, acc, entry{action: "org.transfer_ownership", targetType: "member", targetID: toUserID,
			changes: map[string]any{
				"new_owner":      map[string]any{"user_id": toUserID, "role": change{From: target.Role.String(), To: "owner"}},
				"previous_owner": map[string]any{"user_id": acc.UserID, "role": change{From: "owner", To: stepDown.String()}},
			}}); err != nil {
			return err
		}
		m, err = findMember(ctx, tx, acc.OrgID, toUserID)
		return err
	})
	return m, err
}

// RemoveMember takes a member out of the organisation (team.remove). They
// lose access at once; their history stays. They are taken off jobs that
// have not started, and where they were the primary engineer the next
// engineer becomes primary.
func (s *MemberService) RemoveMember(ctx context.Context, userID int64) error {
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.require(fieldops.FlagTeamRemove); err != nil {
			return err
		}
		target, err := findMember(ctx, tx, acc.OrgID, userID)
		if err != nil {
			return err
		}
		if err := fieldops.CheckManageMember(acc.Role, target.Role); err != nil {
			return err
		}
		if target.Role == fieldops.RoleOwner {
			if err := checkOwnersAfterLosing(ctx, tx, acc.OrgID); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, `
			DELETE FROM job_assignments a USING jobs j
			WHERE a.org_id = $1 AND a.user_id = $2 AND j.org_id = a.org_id AND j.id = a.job_id
			  AND j.status = 'scheduled' AND j.scheduled_start > $3
			RETURNING a.job_id, a.is_primary`, acc.OrgID, userID, s.db.now())
		if err != nil {
			return err
		}
		var unassigned, promote []int64
		for rows.Next() {
			var jobID int64
			var primary bool
			if err := rows.Scan(&jobID, &primary); err != nil {
				rows.Close()
				return err
			}
			unassigned = append(unassigned, jobID)
			if primary {
				promote = append(promote, jobID)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(promote) > 0 {
			if _, err := tx.Exec(ctx, `
				UPDATE job_assignments a SET is_primary = true
				FROM (SELECT DISTINCT ON (job_id) job_id, user_id FROM job_assignments
				      WHERE org_id = $1 AND job_id = ANY($2) ORDER BY job_id, assigned_at, user_id) first
				WHERE a.job_id = first.job_id AND a.user_id = first.user_id`, acc.OrgID, promote); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE memberships SET status = 'removed', removed_at = now(), updated_at = now()
			WHERE org_id = $1 AND user_id = $2`, acc.OrgID, userID); err != nil {
			return err
		}
		// Every session ends: web and API by the revocation floor, the
		// Telegram chat by its link.
		now := s.db.now()
		if err := upsertFloor(ctx, tx, acc.OrgID, userID, now); err != nil {
			return err
		}
		if _, err := revokeAPITokens(ctx, tx, acc.OrgID, userID, now, nil); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE telegram_links SET active = false, unlinked_at = $3, unlinked_by = $4
			WHERE org_id = $1 AND user_id = $2 AND active`, acc.OrgID, userID, now, acc.UserID)
		if err != nil {
			return err
		}
		slices.Sort(unassigned)
		return s.db.audit(ctx, tx, acc, entry{action: "member.remove", targetType: "member", targetID: userID,
			changes: map[string]any{"email": target.Email, "role": target.Role.String(), "unassigned_jobs": unassigned,
				"sessions_ended": true, "telegram_unlinked": tag.RowsAffected() > 0}})
	})
	if err != nil || s.Sessions == nil {
		return err
	}
	actor, _ := fieldops.ActorFrom(ctx)
	return s.Sessions.PurgeRedis(ctx, actor.OrgID, userID)
}

// checkOwnersAfterLosing refuses to take away the last Owner.
func checkOwnersAfterLosing(ctx context.Context, tx pgx.Tx, orgID int64) error {
	var owners int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM memberships WHERE org_id = $1 AND role = 'owner' AND status = 'active'`, orgID).Scan(&owners); err != nil {
		return err
	}
	return fieldops.CheckOwnersRemain(owners - 1)
}

func overrideMap(ovs []fieldops.Override) map[string]string {
	m := make(map[string]string, len(ovs))
	for _, o := range ovs {
		m[o.Flag.String()] = o.Scope.String()
	}
	return m
}

// checkWidening applies "nobody grants more than they hold" to the change
// as a whole: clearing an override that took a flag away gives it back,
// so every flag whose scope grows must be held by the actor at least as
// widely.
func checkWidening(acc *access, target *fieldops.Member, overrides []fieldops.Override) error {
	before := fieldops.EffectiveGrants(target.Role, target.Overrides)
	after := fieldops.EffectiveGrants(target.Role, overrides)
	for _, f := range fieldops.AllFlags() {
		if to := after.Scope(f); to > before.Scope(f) && acc.Grants.Scope(f) < to {
			return &fieldops.Error{Code: fieldops.EFORBIDDEN, Field: "overrides",
				Message: fmt.Sprintf("You cannot give %s %q: you do not hold it yourself. Ask an Owner to make this change.", target.Name, f.String())}
		}
	}
	return nil
}
