package fieldops

import (
	"fmt"
	"strings"
)

// Plan is a subscription plan of PRODUCT.md §3.
type Plan struct {
	Name          string // "starter", as stored
	PricePence    int    // per month, with the included users
	IncludedUsers int
	Roles         []Role // the roles members may have on this plan
	Overrides     bool   // whether per-user permission overrides are offered
}

// ExtraSeatPricePence is the monthly price of each seat past a plan's
// included users.
const ExtraSeatPricePence = 1000

// plans are in ascending order of price and size; upgradeFor relies on it.
var plans = []Plan{
	{Name: "starter", PricePence: 2900, IncludedUsers: 3, Roles: []Role{RoleOwner, RoleEngineer, RoleOfficeStaff}, Overrides: false},
	{Name: "team", PricePence: 4900, IncludedUsers: 5, Roles: AllRoles(), Overrides: true},
	{Name: "business", PricePence: 7900, IncludedUsers: 8, Roles: AllRoles(), Overrides: true},
}

// Plans returns the plans, cheapest first. The result is a copy.
func Plans() []Plan {
	ps := make([]Plan, len(plans))
	for i, p := range plans {
		ps[i] = p.clone()
	}
	return ps
}

func (p Plan) clone() Plan {
	p.Roles = append([]Role(nil), p.Roles...)
	return p
}

// FindPlan returns the plan of that name ("team"; any case).
func FindPlan(name string) (Plan, error) {
	k := strings.ToLower(strings.TrimSpace(name))
	for _, p := range plans {
		if p.Name == k {
			return p.clone(), nil
		}
	}
	return Plan{}, Invalid("plan", "%q is not a plan. Choose %s.", name, planList(plans, "or"))
}

// Label returns the plan's name as shown to users: "Starter".
func (p Plan) Label() string {
	if p.Name == "" {
		return ""
	}
	return strings.ToUpper(p.Name[:1]) + p.Name[1:]
}

// Seats returns the number of seats: the included users plus the extra
// seats bought. Active members and pending invitations each take one.
func (p Plan) Seats(extraSeats int) int {
	return p.IncludedUsers + max(extraSeats, 0)
}

// MonthlyPricePence returns the plan's price with extraSeats extra seats.
func (p Plan) MonthlyPricePence(extraSeats int) int {
	return p.PricePence + max(extraSeats, 0)*ExtraSeatPricePence
}

// AllowsRole reports whether members may have role r on this plan.
func (p Plan) AllowsRole(r Role) bool {
	for _, pr := range p.Roles {
		if pr == r {
			return true
		}
	}
	return false
}

// CheckSeats returns an ELIMIT error when used seats (active members and
// pending invitations) plus adding more would not fit the plan with
// extraSeats extra seats. With adding 0 it checks that the current team
// fits, as for a downgrade.
func CheckSeats(p Plan, extraSeats, used, adding int) error {
	seats := p.Seats(extraSeats)
	need := used + adding - seats
	if need <= 0 {
		return nil
	}
	var head string
	if used <= seats {
		head = fmt.Sprintf("%s plan: %d of %d seats used.", p.Label(), used, seats)
	} else {
		head = fmt.Sprintf("%s plan: %d seats needed but only %d available.", p.Label(), used, seats)
	}
	var fixes []string
	if need == 1 {
		fixes = append(fixes, fmt.Sprintf("add an extra seat for %s/month", formatPence(ExtraSeatPricePence)))
	} else {
		fixes = append(fixes, fmt.Sprintf("add %d extra seats for %s/month", need, formatPence(need*ExtraSeatPricePence)))
	}
	if up, ok := upgradeFor(p, used+adding); ok && adding > 0 {
		fixes = append(fixes, fmt.Sprintf("upgrade to the %s plan", up.Label()))
	}
	if need == 1 {
		fixes = append(fixes, "remove a member or revoke a pending invitation")
	} else {
		fixes = append(fixes, fmt.Sprintf("remove %d members or pending invitations", need))
	}
	last := len(fixes) - 1
	return Errorf(ELIMIT, "%s To continue, %s, or %s.", head, strings.Join(fixes[:last], ", "), fixes[last])
}

// CheckPlanFits returns an error when an organisation could not move to
// plan p with extraSeats extra seats: seatRoles holds the role of every
// active member and pending invitation, withOverrides is how many members
// have per-user permissions. It is the check for a downgrade.
func CheckPlanFits(p Plan, extraSeats int, seatRoles []Role, withOverrides int) error {
	for _, r := range seatRoles {
		if !p.AllowsRole(r) {
			return Errorf(ELIMIT, "The %s plan offers only %s. Give your %s members another role, or revoke their invitations, before you change plan.",
				p.Label(), roleList(p.Roles, Role.Label, "and"), r.Label())
		}
	}
	if withOverrides > 0 && !p.Overrides {
		return Errorf(ELIMIT, "The %s plan has no per-user permissions, and %d %s them. Remove those per-user permissions before you change plan.",
			p.Label(), withOverrides, plural(withOverrides, "member has", "members have"))
	}
	return CheckSeats(p, extraSeats, len(seatRoles), 0)
}

// upgradeFor returns the smallest plan above p that includes users seats,
// or else the next plan above p.
func upgradeFor(p Plan, users int) (Plan, bool) {
	var next *Plan
	for i := range plans {
		q := &plans[i]
		if q.PricePence <= p.PricePence || q.IncludedUsers <= p.IncludedUsers {
			continue
		}
		if next == nil {
			next = q
		}
		if q.IncludedUsers >= users {
			return q.clone(), true
		}
	}
	if next == nil {
		return Plan{}, false
	}
	return next.clone(), true
}

// planList names plans as "starter, team or business".
func planList(ps []Plan, conj string) string {
	ns := make([]string, len(ps))
	for i, p := range ps {
		ns[i] = p.Name
	}
	return joinOr(ns, conj)
}

// formatPence formats an amount as "£10" or "£10.50".
func formatPence(p int) string {
	if p%100 == 0 {
		return fmt.Sprintf("£%d", p/100)
	}
	return fmt.Sprintf("£%d.%02d", p/100, p%100)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
