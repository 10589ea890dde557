package fieldops

import "sync"

// The rules of PRODUCT.md §2 that hold whatever the matrix says. Each is a
// pure function: the store calls it, inside the transaction of the change,
// after it has checked the flag itself (team.edit_permissions,
// team.change_role, team.invite, team.remove, session.revoke_all) with
// Access.Require.

// CheckOverrides checks per-user overrides before they are saved for a
// member of role role, by an actor holding actor. Per-user permissions
// need a plan that offers them; locked flags cannot be overridden; each
// flag may appear once; and nobody grants a flag, or a wider scope, than
// they hold. Revoking or narrowing a flag of the role is always allowed,
// as is an override that matches the role. An empty list (back to the
// role's defaults) is allowed on every plan.
func CheckOverrides(p Plan, actor Grants, role Role, overrides []Override) error {
	if len(overrides) == 0 {
		return nil
	}
	if !p.Overrides {
		return Errorf(ELIMIT, "Per-user permissions are on the %s plans. Upgrade your plan to change what one person can do, or give them a different role instead.",
			planLabels(overridePlans(), "and"))
	}
	if !role.valid() {
		return Invalid("role", "Choose the member's role first: %s.", roleList(AllRoles(), Role.Label, "or"))
	}
	def := RoleGrants(role)
	var seen uint64
	for _, o := range overrides {
		if !o.Flag.valid() {
			return Invalid("flag", "One of the permissions is not known. Reload the page and try again.")
		}
		if !o.Scope.valid() {
			return Invalid("scope", "The setting for %s is not known. Choose all, own or none.", o.Flag)
		}
		bit := uint64(1) << o.Flag
		if seen&bit != 0 {
			return Invalid("flag", "%s is set more than once. Keep one setting for each permission.", o.Flag)
		}
		seen |= bit
		if o.Flag.Locked() {
			return Invalid("flag", "%s can't be changed for one person: only the %s role has it. Remove it from the list; to give it to someone, make them an Owner.",
				o.Flag, roleList(holders(o.Flag), Role.Label, "and"))
		}
		if o.Scope <= def.Scope(o.Flag) {
			continue // revoking, narrowing or repeating the role's default
		}
		switch actor.Scope(o.Flag) {
		case ScopeNone:
			return Errorf(EFORBIDDEN, "You can only give others what you have yourself, and you don't have permission to %s (%s). Ask an Owner or Admin of your organisation to make this change.",
				o.Flag.action(), o.Flag)
		case ScopeOwn:
			if o.Scope == ScopeAll {
				return Errorf(EFORBIDDEN, "You can only give others what you have yourself: you can %s (%s) only for your own work, so choose own instead, or ask an Owner or Admin of your organisation to make this change.",
					o.Flag.action(), o.Flag)
			}
		}
	}
	return nil
}

// CheckAssignRole checks that an actor of role actorRole holding actor may
// give a member (or an invitation) the target role on plan p: the plan must
// offer the role, only an Owner makes an Owner, and the actor must hold
// everything the role holds.
func CheckAssignRole(p Plan, actorRole Role, actor Grants, target Role) error {
	if !target.valid() {
		return Invalid("role", "Choose a role: %s.", roleList(AllRoles(), Role.Label, "or"))
	}
	if !p.AllowsRole(target) {
		msg := "The %s plan offers only the %s roles. Choose one of those"
		args := []any{p.Label(), roleList(p.Roles, Role.Label, "and")}
		if up, ok := planAllowing(target); ok {
			msg += ", or upgrade to the %s plan to add a %s"
			args = append(args, up.Label(), target.Label())
		}
		return Errorf(ELIMIT, msg+".", args...)
	}
	if target == RoleOwner && actorRole != RoleOwner {
		return Errorf(EFORBIDDEN, "Only an Owner can make someone an Owner. Ask an Owner of your organisation to do it.")
	}
	need := RoleGrants(target)
	if actor.Covers(need) {
		return nil
	}
	for _, f := range AllFlags() {
		have, want := actor.Scope(f), need.Scope(f)
		if have >= want {
			continue
		}
		if have == ScopeOwn {
			return Errorf(EFORBIDDEN, "You can't give someone the %s role: it can %s across the whole organisation, and you only for your own work. Ask an Owner or Admin of your organisation to do it.",
				target.Label(), f.action())
		}
		return Errorf(EFORBIDDEN, "You can't give someone the %s role: it can %s, and you can't. Ask an Owner or Admin of your organisation to do it.",
			target.Label(), f.action())
	}
	return nil // not reached: Covers was false
}

// CheckManageMember checks that an actor of role actorRole may change the
// role or permissions of, remove, or end the sessions of a member of role
// targetRole: only an Owner does that to an Owner.
func CheckManageMember(actorRole, targetRole Role) error {
	if !actorRole.valid() {
		return Errorf(EFORBIDDEN, "You don't have permission to manage members. Ask an Owner or Admin of your organisation.")
	}
	if targetRole == RoleOwner && actorRole != RoleOwner {
		return Errorf(EFORBIDDEN, "Only an Owner can change, remove or sign out an Owner. Ask an Owner of your organisation to do it.")
	}
	return nil
}

// CheckOwnersRemain checks that an organisation still has an Owner after a
// change: ownersAfter is the number of Owners it would leave.
func CheckOwnersRemain(ownersAfter int) error {
	if ownersAfter < 1 {
		return Errorf(ECONFLICT, "An organisation needs at least one Owner. Make someone else an Owner first.")
	}
	return nil
}

// overridePlans returns the plans that offer per-user permissions.
func overridePlans() []Plan {
	var ps []Plan
	for _, p := range plans {
		if p.Overrides {
			ps = append(ps, p)
		}
	}
	return ps
}

// planAllowing returns the cheapest plan that offers role r.
func planAllowing(r Role) (Plan, bool) {
	for _, p := range plans {
		if p.AllowsRole(r) {
			return p.clone(), true
		}
	}
	return Plan{}, false
}

// holders returns the roles that hold f by default.
func holders(f Flag) []Role {
	var rs []Role
	for _, r := range AllRoles() {
		if RoleGrants(r).Scope(f) != ScopeNone {
			rs = append(rs, r)
		}
	}
	return rs
}

// planLabels names plans as "Team and Business".
func planLabels(ps []Plan, conj string) string {
	ns := make([]string, len(ps))
	for i, p := range ps {
		ns[i] = p.Label()
	}
	return joinOr(ns, conj)
}

// adminOnly holds the flags that, by the matrix, no role but Owner and
// Admin has: the ones that run the organisation itself. It is computed
// once, after init has built the matrix.
var adminOnly = sync.OnceValue(func() uint64 {
	var mask uint64
	for _, f := range AllFlags() {
		only := true
		for _, r := range AllRoles() {
			if r != RoleOwner && r != RoleAdmin && RoleGrants(r).Scope(f) != ScopeNone {
				only = false
			}
		}
		if only {
			mask |= 1 << f
		}
	}
	return mask
})

// TwoFactorRequired reports whether a member must sign in with a second
// factor: Owners and Admins always, the roles the organisation's policy
// names, and anyone whose per-user permissions give them a flag that only
// Owners and Admins have by default (so an override cannot make an
// Admin-in-all-but-name without two-factor sign-in).
func TwoFactorRequired(role Role, g Grants, policy []Role) bool {
	if role == RoleOwner || role == RoleAdmin {
		return true
	}
	for _, r := range policy {
		if r == role {
			return true
		}
	}
	return (g.all|g.own)&adminOnly() != 0
}
