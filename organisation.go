package fieldops

import (
	"context"
	"strings"
	"time"
)

// Organisation is one contractor firm: the unit of tenancy and billing.
type Organisation struct {
	ID                    int64
	Name                  string
	Plan                  string
	ExtraSeats            int
	TimeZone              string
	GeofenceRadiusM       int
	CapacityAmberPct      int
	CapacityRedPct        int
	Require2FARoles       []Role
	LocationRetentionDays int
	PhotoRetentionDays    int
	CreatedAt             time.Time
	UpdatedAt             time.Time
}

// NewOrganisation is what is needed to start an organisation. Whoever
// creates it becomes its first Owner.
type NewOrganisation struct {
	Name     string
	TimeZone string // IANA name; default Europe/London
	Plan     string // default starter
}

// Validate checks the input and fills the defaults.
func (n *NewOrganisation) Validate() error {
	n.Name = strings.TrimSpace(n.Name)
	if err := checkText("name", "Organisation name", n.Name, 1, 200); err != nil {
		return err
	}
	if n.TimeZone == "" {
		n.TimeZone = "Europe/London"
	}
	if _, err := time.LoadLocation(n.TimeZone); err != nil {
		return Invalid("time_zone", "Time zone %q is not known: use a name such as Europe/London.", n.TimeZone)
	}
	if n.Plan == "" {
		n.Plan = "starter"
	}
	if _, err := FindPlan(n.Plan); err != nil {
		return err
	}
	return nil
}

// OrganisationUpdate changes settings; nil fields stay as they are.
type OrganisationUpdate struct {
	Name                  *string
	TimeZone              *string
	GeofenceRadiusM       *int
	CapacityAmberPct      *int
	CapacityRedPct        *int
	LocationRetentionDays *int
	Require2FARoles       []Role // nil: unchanged; needs security.policy
}

// Validate checks the fields that are set.
func (u *OrganisationUpdate) Validate() error {
	if u.Name != nil {
		*u.Name = strings.TrimSpace(*u.Name)
		if err := checkText("name", "Organisation name", *u.Name, 1, 200); err != nil {
			return err
		}
	}
	if u.TimeZone != nil {
		if _, err := time.LoadLocation(*u.TimeZone); err != nil || *u.TimeZone == "" {
			return Invalid("time_zone", "Time zone %q is not known: use a name such as Europe/London.", *u.TimeZone)
		}
	}
	if u.GeofenceRadiusM != nil && (*u.GeofenceRadiusM < 10 || *u.GeofenceRadiusM > 5000) {
		return Invalid("geofence_radius_m", "Check-in radius must be between 10 and 5000 metres.")
	}
	for _, p := range []struct {
		field string
		v     *int
	}{{"capacity_amber_pct", u.CapacityAmberPct}, {"capacity_red_pct", u.CapacityRedPct}} {
		if p.v != nil && (*p.v < 1 || *p.v > 200) {
			return Invalid(p.field, "Capacity thresholds must be between 1 and 200 per cent.")
		}
	}
	if u.LocationRetentionDays != nil && (*u.LocationRetentionDays < 30 || *u.LocationRetentionDays > 3650) {
		return Invalid("location_retention_days", "Location evidence must be kept between 30 and 3650 days.")
	}
	if u.Require2FARoles != nil {
		has := map[Role]bool{}
		for _, r := range u.Require2FARoles {
			if r < RoleOwner || r > RoleAccountant {
				return Invalid("require_2fa_roles", "Unknown role in the two-factor policy.")
			}
			has[r] = true
		}
		if !has[RoleOwner] || !has[RoleAdmin] {
			return Invalid("require_2fa_roles", "Owners and Admins always need two-factor sign-in; keep them in the policy.")
		}
	}
	return nil
}

// OrganisationService manages the actor's organisation.
type OrganisationService interface {
	// CreateOrganisation starts an organisation with the actor (UserID in
	// the context; OrgID may be zero) as its first Owner.
	CreateOrganisation(ctx context.Context, n NewOrganisation) (*Organisation, error)
	// FindOrganisation returns the actor's organisation.
	FindOrganisation(ctx context.Context) (*Organisation, error)
	// UpdateOrganisation needs settings.edit, and security.policy for
	// the two-factor policy.
	UpdateOrganisation(ctx context.Context, u OrganisationUpdate) (*Organisation, error)
	// ChangePlan needs billing.manage. A plan that the current members,
	// pending invitations, roles or overrides would not fit is refused
	// with what to change first.
	ChangePlan(ctx context.Context, plan string, extraSeats int) (*Organisation, error)
	// FindBilling returns the plan, seats and monthly price (billing.view).
	FindBilling(ctx context.Context) (*Billing, error)
}

// Billing is what the organisation pays for and uses.
type Billing struct {
	Plan              Plan
	ExtraSeats        int
	Seats             int // included users plus extra seats
	SeatsUsed         int // active members plus pending invitations
	MonthlyPricePence int
}

// checkText validates a required or optional text field by length.
func checkText(field, label, v string, min, max int) error {
	n := len([]rune(v))
	switch {
	case n < min && min == 1:
		return Invalid(field, "%s is required.", label)
	case n < min:
		return Invalid(field, "%s must be at least %d characters.", label, min)
	case n > max:
		return Invalid(field, "%s is too long: at most %d characters.", label, max)
	}
	return nil
}
