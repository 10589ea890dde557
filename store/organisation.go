package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/fieldops/fieldops"
)

// OrganisationService implements fieldops.OrganisationService.
type OrganisationService struct{ db *DB }

var _ fieldops.OrganisationService = (*OrganisationService)(nil)

// NewOrganisationService returns the organisation service.
func NewOrganisationService(db *DB) *OrganisationService { return &OrganisationService{db: db} }

const orgColumns = `id, name, plan, extra_seats, time_zone, geofence_radius_m, capacity_amber_pct, capacity_red_pct,
	require_2fa_roles, location_retention_days, photo_retention_days, created_at, updated_at`

func findOrganisation(ctx context.Context, tx pgx.Tx, id int64) (*fieldops.Organisation, error) {
	o := &fieldops.Organisation{}
	var roles []string
	err := tx.QueryRow(ctx, `SELECT `+orgColumns+` FROM organisations WHERE id = $1`, id).Scan(
		&o.ID, &o.Name, &o.Plan, &o.ExtraSeats, &o.TimeZone, &o.GeofenceRadiusM, &o.CapacityAmberPct, &o.CapacityRedPct,
		&roles, &o.LocationRetentionDays, &o.PhotoRetentionDays, &o.CreatedAt, &o.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("Organisation")
	}
	if err != nil {
		return nil, err
	}
	for _, r := range roles {
		role, err := fieldops.ParseRole(r)
		if err != nil {
			return nil, err
		}
		o.Require2FARoles = append(o.Require2FARoles, role)
	}
	return o, nil
}

// CreateOrganisation starts an organisation with the actor as its Owner.
func (s *OrganisationService) CreateOrganisation(ctx context.Context, n fieldops.NewOrganisation) (*fieldops.Organisation, error) {
	actor, ok := fieldops.ActorFrom(ctx)
	if !ok || actor.UserID == 0 {
		return nil, fieldops.Errorf(fieldops.EUNAUTHORIZED, "Please sign in again.")
	}
	if err := n.Validate(); err != nil {
		return nil, err
	}
	var org *fieldops.Organisation
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		var name string
		if err := tx.QueryRow(ctx, `SELECT name FROM users WHERE id = $1`, actor.UserID).Scan(&name); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return fieldops.Errorf(fieldops.EUNAUTHORIZED, "Please sign in again.")
			}
			return err
		}
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO organisations (name, plan, time_zone) VALUES ($1, $2, $3) RETURNING id`,
			n.Name, n.Plan, n.TimeZone).Scan(&id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'owner')`, id, actor.UserID); err != nil {
			return err
		}
		if err := s.db.appendAudit(ctx, tx, id, actor.UserID, name, actor.Channel, actor.IP, entry{
			action: "org.create", targetType: "organisation", targetID: id,
			changes: map[string]any{"name": n.Name, "plan": n.Plan, "time_zone": n.TimeZone, "owner": actor.UserID},
		}); err != nil {
			return err
		}
		var err error
		org, err = findOrganisation(ctx, tx, id)
		return err
	})
	return org, err
}

// FindOrganisation returns the actor's organisation; any member may.
func (s *OrganisationService) FindOrganisation(ctx context.Context) (*fieldops.Organisation, error) {
	var org *fieldops.Organisation
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.load(ctx, tx)
		if err != nil {
			return err
		}
		org, err = findOrganisation(ctx, tx, acc.OrgID)
		return err
	})
	return org, err
}

// UpdateOrganisation changes settings (settings.edit; security.policy for
// the two-factor policy).
func (s *OrganisationService) UpdateOrganisation(ctx context.Context, u fieldops.OrganisationUpdate) (*fieldops.Organisation, error) {
	if err := u.Validate(); err != nil {
		return nil, err
	}
	var org *fieldops.Organisation
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.require(fieldops.FlagSettingsEdit); err != nil {
			return err
		}
		if u.Require2FARoles != nil {
			if err := acc.require(fieldops.FlagSecurityPolicy); err != nil {
				return err
			}
		}
		old, err := findOrganisation(ctx, tx, acc.OrgID)
		if err != nil {
			return err
		}
		changes := map[string]any{}
		set := []string{}
		args := []any{acc.OrgID}
		col := func(name string, from, to any) {
			if fmt.Sprint(from) == fmt.Sprint(to) {
				return
			}
			args = append(args, to)
			set = append(set, fmt.Sprintf("%s = $%d", name, len(args)))
			changes[name] = change{From: from, To: to}
		}
		if u.Name != nil {
			col("name", old.Name, *u.Name)
		}
		if u.TimeZone != nil {
			col("time_zone", old.TimeZone, *u.TimeZone)
		}
		if u.GeofenceRadiusM != nil {
			col("geofence_radius_m", old.GeofenceRadiusM, *u.GeofenceRadiusM)
		}
		amber, red := old.CapacityAmberPct, old.CapacityRedPct
		if u.CapacityAmberPct != nil {
			amber = *u.CapacityAmberPct
			col("capacity_amber_pct", old.CapacityAmberPct, amber)
		}
		if u.CapacityRedPct != nil {
			red = *u.CapacityRedPct
			col("capacity_red_pct", old.CapacityRedPct, red)
		}
		if amber >= red {
			return fieldops.Invalid("capacity_red_pct", "The red capacity threshold (%d%%) must be above the amber one (%d%%).", red, amber)
		}
		if u.LocationRetentionDays != nil {
			col("location_retention_days", old.LocationRetentionDays, *u.LocationRetentionDays)
		}
		if u.Require2FARoles != nil {
			col("require_2fa_roles", roleNames(old.Require2FARoles), roleNames(u.Require2FARoles))
		}
		if len(set) == 0 {
			org = old
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE organisations SET `+strings.Join(set, ", ")+`, updated_at = now() WHERE id = $1`, args...); err != nil {
			return err
		}
		if err := s.db.audit(ctx, tx, acc, entry{action: "org.update", targetType: "organisation", targetID: acc.OrgID, changes: changes}); err != nil {
			return err
		}
		org, err = findOrganisation(ctx, tx, acc.OrgID)
		return err
	})
	return org, err
}

// ChangePlan moves the organisation to another plan and number of extra
// seats (billing.manage). It refuses a plan the organisation would not
// fit, listing what to change first.
func (s *OrganisationService) ChangePlan(ctx context.Context, planName string, extraSeats int) (*fieldops.Organisation, error) {
	plan, err := fieldops.FindPlan(planName)
	if err != nil {
		return nil, err
	}
	if extraSeats < 0 || extraSeats > 500 {
		return nil, fieldops.Invalid("extra_seats", "Extra seats must be between 0 and 500.")
	}
	var org *fieldops.Organisation
	err = s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.require(fieldops.FlagBillingManage); err != nil {
			return err
		}
		var problems []string
		used, err := seatsUsed(ctx, tx, acc.OrgID)
		if err != nil {
			return err
		}
		if seats := plan.Seats(extraSeats); used > seats {
			problems = append(problems, fmt.Sprintf("%d seats are in use (members and pending invitations) but the %s plan with %d extra seats has %d: remove %d or add extra seats",
				used, plan.Label(), extraSeats, seats, used-seats))
		}
		rows, err := tx.Query(ctx, `SELECT u.name, m.role, m.overrides <> '{}'::jsonb FROM memberships m JOIN users u ON u.id = m.user_id
			WHERE m.org_id = $1 AND m.status = 'active' ORDER BY u.name`, acc.OrgID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var name, role string
			var hasOverrides bool
			if err := rows.Scan(&name, &role, &hasOverrides); err != nil {
				rows.Close()
				return err
			}
			r, _ := fieldops.ParseRole(role)
			if !plan.AllowsRole(r) {
				problems = append(problems, fmt.Sprintf("%s is %s, a role the %s plan does not offer: change their role", name, r.Label(), plan.Label()))
			}
			if hasOverrides && !plan.Overrides {
				problems = append(problems, fmt.Sprintf("%s has per-user permissions, which the %s plan does not offer: clear them", name, plan.Label()))
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT email, role, overrides <> '{}'::jsonb FROM invitations
			WHERE org_id = $1 AND `+pendingInvitation+` ORDER BY email`, acc.OrgID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var email, role string
			var hasOverrides bool
			if err := rows.Scan(&email, &role, &hasOverrides); err != nil {
				rows.Close()
				return err
			}
			r, _ := fieldops.ParseRole(role)
			if !plan.AllowsRole(r) {
				problems = append(problems, fmt.Sprintf("the pending invitation to %s offers %s, a role the %s plan does not offer: revoke it", email, r.Label(), plan.Label()))
			} else if hasOverrides && !plan.Overrides {
				problems = append(problems, fmt.Sprintf("the pending invitation to %s carries per-user permissions, which the %s plan does not offer: revoke it", email, plan.Label()))
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(problems) > 0 {
			return &fieldops.Error{Code: fieldops.ECONFLICT, Field: "plan",
				Message: fmt.Sprintf("The organisation does not fit the %s plan yet. First: %s.", plan.Label(), strings.Join(problems, "; "))}
		}
		old, err := findOrganisation(ctx, tx, acc.OrgID)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE organisations SET plan = $2, extra_seats = $3, updated_at = now() WHERE id = $1`,
			acc.OrgID, plan.Name, extraSeats); err != nil {
			return err
		}
		if err := s.db.audit(ctx, tx, acc, entry{action: "billing.plan_change", targetType: "organisation", targetID: acc.OrgID,
			changes: map[string]any{
				"plan":        change{From: old.Plan, To: plan.Name},
				"extra_seats": change{From: old.ExtraSeats, To: extraSeats},
				"price_pence": change{From: mustPlan(old.Plan).MonthlyPricePence(old.ExtraSeats), To: plan.MonthlyPricePence(extraSeats)},
			}}); err != nil {
			return err
		}
		org, err = findOrganisation(ctx, tx, acc.OrgID)
		return err
	})
	return org, err
}

// FindBilling returns the plan, seats and price (billing.view).
func (s *OrganisationService) FindBilling(ctx context.Context) (*fieldops.Billing, error) {
	var b *fieldops.Billing
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.load(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.require(fieldops.FlagBillingView); err != nil {
			return err
		}
		used, err := seatsUsed(ctx, tx, acc.OrgID)
		if err != nil {
			return err
		}
		b = &fieldops.Billing{Plan: acc.plan, ExtraSeats: acc.extraSeats, Seats: acc.plan.Seats(acc.extraSeats),
			SeatsUsed: used, MonthlyPricePence: acc.plan.MonthlyPricePence(acc.extraSeats)}
		return nil
	})
	return b, err
}

// seatsUsed counts active members and pending invitations.
func seatsUsed(ctx context.Context, tx pgx.Tx, orgID int64) (int, error) {
	var n int
	err := tx.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM memberships WHERE org_id = $1 AND status = 'active')
		     + (SELECT count(*) FROM invitations WHERE org_id = $1 AND `+pendingInvitation+`)`, orgID).Scan(&n)
	return n, err
}

func mustPlan(name string) fieldops.Plan {
	p, _ := fieldops.FindPlan(name)
	return p
}

func roleNames(rs []fieldops.Role) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.String()
	}
	return out
}
