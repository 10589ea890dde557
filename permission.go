package fieldops

import (
	"fmt"
	"strings"
)

// Role is a member's role in an organisation. The zero value, RoleNone,
// holds nothing.
type Role uint8

// The roles of PRODUCT.md §1, in the column order of the permission matrix.
const (
	RoleNone Role = iota
	RoleOwner
	RoleAdmin
	RoleManager
	RoleEngineer
	RoleOfficeStaff
	RoleReadOnly
	RoleAccountant
)

const numRoles = int(RoleAccountant) // roles other than RoleNone

var roleNames = [...]string{
	RoleNone:        "none",
	RoleOwner:       "owner",
	RoleAdmin:       "admin",
	RoleManager:     "manager",
	RoleEngineer:    "engineer",
	RoleOfficeStaff: "office_staff",
	RoleReadOnly:    "read_only",
	RoleAccountant:  "accountant",
}

var roleLabels = [...]string{
	RoleNone:        "No role",
	RoleOwner:       "Owner",
	RoleAdmin:       "Admin",
	RoleManager:     "Manager",
	RoleEngineer:    "Engineer",
	RoleOfficeStaff: "Office Staff",
	RoleReadOnly:    "Read-Only",
	RoleAccountant:  "Accountant",
}

// AllRoles returns the seven roles, Owner first, in the column order of
// the permission matrix.
func AllRoles() []Role {
	return []Role{RoleOwner, RoleAdmin, RoleManager, RoleEngineer, RoleOfficeStaff, RoleReadOnly, RoleAccountant}
}

func (r Role) valid() bool { return r >= RoleOwner && r <= RoleAccountant }

// String returns the role's name as stored and typed: "office_staff".
func (r Role) String() string {
	if int(r) < len(roleNames) {
		return roleNames[r]
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// Label returns the role's name as shown to users: "Office Staff".
func (r Role) Label() string {
	if int(r) < len(roleLabels) {
		return roleLabels[r]
	}
	return r.String()
}

// ParseRole reads a role name. It accepts the stored name ("office_staff")
// and the label ("Office Staff", "read-only"), in any case.
func ParseRole(s string) (Role, error) {
	k := strings.ToLower(strings.TrimSpace(s))
	k = strings.NewReplacer(" ", "_", "-", "_").Replace(k)
	for _, r := range AllRoles() {
		if k == roleNames[r] {
			return r, nil
		}
	}
	return RoleNone, Invalid("role", "%q is not a role. Choose one of: %s.", s, roleList(AllRoles(), Role.String, "or"))
}

// Flag is one permission of the matrix, named area.action. Flags are
// numbered from 0 in the order of PRODUCT.md §2; store them by name
// (String), never by number.
type Flag uint8

// The 56 flags of PRODUCT.md §2, in table order.
const (
	FlagJobView Flag = iota
	FlagJobCreate
	FlagJobEdit
	FlagJobDelete
	FlagJobAssign
	FlagJobSchedule
	FlagJobCheckIn
	FlagJobComplete
	FlagTimeEdit
	FlagPhotoUpload
	FlagPhotoView
	FlagPhotoDelete
	FlagNoteAdd
	FlagCustomerView
	FlagCustomerCreate
	FlagCustomerEdit
	FlagCustomerDelete
	FlagSiteManage
	FlagQuoteView
	FlagQuoteCreate
	FlagQuoteApprove
	FlagQuoteSend
	FlagCertificateView
	FlagCertificateCreate
	FlagCertificateApprove
	FlagCertificateIssue
	FlagDefectLog
	FlagDefectView
	FlagDefectResolve
	FlagInvoiceView
	FlagInvoiceCreate
	FlagInvoiceEdit
	FlagInvoicePostXero
	FlagXeroConnect
	FlagReportMargins
	FlagReportRevenue
	FlagTimesheetView
	FlagTimesheetExport
	FlagTeamView
	FlagTeamInvite
	FlagTeamChangeRole
	FlagTeamEditPermissions
	FlagTeamRemove
	FlagCapacityView
	FlagScheduleViewTeam
	FlagAuditView
	FlagAuditExport
	FlagSessionViewAll
	FlagSessionRevokeAll
	FlagSecurityPolicy
	FlagSettingsEdit
	FlagAlertsReceive
	FlagBillingView
	FlagBillingManage
	FlagOrgTransferOwnership
	FlagOrgDelete
)

// NumFlags is the number of flags; Flag(0) to Flag(NumFlags-1) are valid.
const NumFlags = 56

// The permission matrix of PRODUCT.md §2, one line per flag in table order.
// The cells are in role order, one letter each:
//
//	O A M E S R C = Owner Admin Manager Engineer Office-Staff Read-Only Accountant
//	A = ✓ all     O = ◐ own     . = blank, not granted
//
// lockedGrant marks the 🔒 grants: no override grants, narrows or revokes
// them.
var matrix = [NumFlags]flagRow{
	//                         OAMESRC
	FlagJobView:              {"AAAOAAA", overridable, "job.view"},
	FlagJobCreate:            {"AAA.A..", overridable, "job.create"},
	FlagJobEdit:              {"AAA.A..", overridable, "job.edit"},
	FlagJobDelete:            {"AAA....", overridable, "job.delete"},
	FlagJobAssign:            {"AAA.A..", overridable, "job.assign"},
	FlagJobSchedule:          {"AAA.A..", overridable, "job.schedule"},
	FlagJobCheckIn:           {"OOOO...", overridable, "job.check_in"},
	FlagJobComplete:          {"AAAOA..", overridable, "job.complete"},
	FlagTimeEdit:             {"AAAO...", overridable, "time.edit"},
	FlagPhotoUpload:          {"AAAOA..", overridable, "photo.upload"},
	FlagPhotoView:            {"AAAOAA.", overridable, "photo.view"},
	FlagPhotoDelete:          {"AAAO...", overridable, "photo.delete"},
	FlagNoteAdd:              {"AAAOA..", overridable, "note.add"},
	FlagCustomerView:         {"AAAOAAA", overridable, "customer.view"},
	FlagCustomerCreate:       {"AAA.A..", overridable, "customer.create"},
	FlagCustomerEdit:         {"AAA.A..", overridable, "customer.edit"},
	FlagCustomerDelete:       {"AA.....", overridable, "customer.delete"},
	FlagSiteManage:           {"AAA.A..", overridable, "site.manage"},
	FlagQuoteView:            {"AAA.AAA", overridable, "quote.view"},
	FlagQuoteCreate:          {"AAA.A..", overridable, "quote.create"},
	FlagQuoteApprove:         {"AAA....", overridable, "quote.approve"},
	FlagQuoteSend:            {"AAA.A..", overridable, "quote.send"},
	FlagCertificateView:      {"AAAOAA.", overridable, "certificate.view"},
	FlagCertificateCreate:    {"AAAO...", overridable, "certificate.create"},
	FlagCertificateApprove:   {"AAA....", overridable, "certificate.approve"},
	FlagCertificateIssue:     {"AAA.A..", overridable, "certificate.issue"},
	FlagDefectLog:            {"AAAO...", overridable, "defect.log"},
	FlagDefectView:           {"AAAOAA.", overridable, "defect.view"},
	FlagDefectResolve:        {"AAA....", overridable, "defect.resolve"},
	FlagInvoiceView:          {"AA..A.A", overridable, "invoice.view"},
	FlagInvoiceCreate:        {"AA..A.A", overridable, "invoice.create"},
	FlagInvoiceEdit:          {"AA....A", overridable, "invoice.edit"},
	FlagInvoicePostXero:      {"AA....A", overridable, "invoice.post_xero"},
	FlagXeroConnect:          {"AA.....", overridable, "xero.connect"},
	FlagReportMargins:        {"AA....A", overridable, "report.margins"},
	FlagReportRevenue:        {"AA....A", overridable, "report.revenue"},
	FlagTimesheetView:        {"AAAO..A", overridable, "timesheet.view"},
	FlagTimesheetExport:      {"AAA...A", overridable, "timesheet.export"},
	FlagTeamView:             {"AAA.AAA", overridable, "team.view"},
	FlagTeamInvite:           {"AA.....", overridable, "team.invite"},
	FlagTeamChangeRole:       {"AA.....", overridable, "team.change_role"},
	FlagTeamEditPermissions:  {"AA.....", overridable, "team.edit_permissions"},
	FlagTeamRemove:           {"AA.....", overridable, "team.remove"},
	FlagCapacityView:         {"AAA.A..", overridable, "capacity.view"},
	FlagScheduleViewTeam:     {"AAA.AA.", overridable, "schedule.view_team"},
	FlagAuditView:            {"AA.....", overridable, "audit.view"},
	FlagAuditExport:          {"AA.....", overridable, "audit.export"},
	FlagSessionViewAll:       {"AA.....", overridable, "session.view_all"},
	FlagSessionRevokeAll:     {"AA.....", overridable, "session.revoke_all"},
	FlagSecurityPolicy:       {"AA.....", overridable, "security.policy"},
	FlagSettingsEdit:         {"AA.....", overridable, "settings.edit"},
	FlagAlertsReceive:        {"AAA....", overridable, "alerts.receive"},
	FlagBillingView:          {"AA....A", overridable, "billing.view"},
	FlagBillingManage:        {"A......", lockedGrant, "billing.manage"},
	FlagOrgTransferOwnership: {"A......", lockedGrant, "org.transfer_ownership"},
	FlagOrgDelete:            {"A......", lockedGrant, "org.delete"},
}

type flagRow struct {
	cells  string // one of A, O, . per role, Owner first
	locked bool
	name   string
}

const (
	overridable = false
	lockedGrant = true
)

// flagText says in words what each flag allows: Description for lists
// and forms, action for "You don't have permission to ...".
var flagText = [NumFlags]struct{ description, action string }{
	FlagJobView:              {"See jobs, their customer and site.", "see jobs"},
	FlagJobCreate:            {"Create new jobs.", "create jobs"},
	FlagJobEdit:              {"Change a job's details.", "change jobs"},
	FlagJobDelete:            {"Delete jobs.", "delete jobs"},
	FlagJobAssign:            {"Assign engineers to jobs.", "assign engineers to jobs"},
	FlagJobSchedule:          {"Book jobs into the schedule and move them.", "schedule jobs"},
	FlagJobCheckIn:           {"Check in and out of a job on site.", "check in to jobs"},
	FlagJobComplete:          {"Mark jobs as complete.", "complete jobs"},
	FlagTimeEdit:             {"Correct the time recorded on jobs.", "change recorded time"},
	FlagPhotoUpload:          {"Add photos to jobs.", "add photos"},
	FlagPhotoView:            {"See job photos.", "see photos"},
	FlagPhotoDelete:          {"Delete job photos.", "delete photos"},
	FlagNoteAdd:              {"Add notes to jobs.", "add notes"},
	FlagCustomerView:         {"See customers and their sites.", "see customers"},
	FlagCustomerCreate:       {"Add new customers.", "add customers"},
	FlagCustomerEdit:         {"Change customer details.", "change customers"},
	FlagCustomerDelete:       {"Delete customers.", "delete customers"},
	FlagSiteManage:           {"Add and change customer sites and their addresses.", "manage sites"},
	FlagQuoteView:            {"See quotes.", "see quotes"},
	FlagQuoteCreate:          {"Write quotes.", "write quotes"},
	FlagQuoteApprove:         {"Approve quotes before they are sent.", "approve quotes"},
	FlagQuoteSend:            {"Send quotes to customers.", "send quotes"},
	FlagCertificateView:      {"See certificates.", "see certificates"},
	FlagCertificateCreate:    {"Write certificates and submit them for approval.", "write certificates"},
	FlagCertificateApprove:   {"Approve certificates or send them back.", "approve certificates"},
	FlagCertificateIssue:     {"Issue approved certificates to customers.", "issue certificates"},
	FlagDefectLog:            {"Record defects found on site.", "record defects"},
	FlagDefectView:           {"See recorded defects.", "see defects"},
	FlagDefectResolve:        {"Mark defects as resolved.", "resolve defects"},
	FlagInvoiceView:          {"See invoices.", "see invoices"},
	FlagInvoiceCreate:        {"Create invoices.", "create invoices"},
	FlagInvoiceEdit:          {"Change invoices.", "change invoices"},
	FlagInvoicePostXero:      {"Send invoices to Xero.", "send invoices to Xero"},
	FlagXeroConnect:          {"Connect or disconnect the organisation's Xero account.", "connect Xero"},
	FlagReportMargins:        {"See job margin reports.", "see margin reports"},
	FlagReportRevenue:        {"See revenue reports.", "see revenue reports"},
	FlagTimesheetView:        {"See timesheets.", "see timesheets"},
	FlagTimesheetExport:      {"Export timesheets.", "export timesheets"},
	FlagTeamView:             {"See the team and everyone's role.", "see the team"},
	FlagTeamInvite:           {"Invite people to join the organisation.", "invite people"},
	FlagTeamChangeRole:       {"Change a member's role.", "change roles"},
	FlagTeamEditPermissions:  {"Give or take away single permissions for one person.", "change someone's permissions"},
	FlagTeamRemove:           {"Remove members from the organisation.", "remove members"},
	FlagCapacityView:         {"See each engineer's booked hours against their working hours.", "see team capacity"},
	FlagScheduleViewTeam:     {"See the whole team's schedule.", "see the team schedule"},
	FlagAuditView:            {"See the audit log.", "see the audit log"},
	FlagAuditExport:          {"Export the audit log as CSV.", "export the audit log"},
	FlagSessionViewAll:       {"See everyone's sign-ins and linked Telegram chats.", "see everyone's sessions"},
	FlagSessionRevokeAll:     {"Sign anyone out and unlink their Telegram chat.", "sign other people out"},
	FlagSecurityPolicy:       {"Set security rules, such as who must use two-factor sign-in.", "change security settings"},
	FlagSettingsEdit:         {"Change the organisation's settings.", "change organisation settings"},
	FlagAlertsReceive:        {"Get alerts, such as danger-present (C1) defects and missed check-ins.", "receive alerts"},
	FlagBillingView:          {"See the plan, seats and monthly price.", "see billing"},
	FlagBillingManage:        {"Change the plan, seats and payment details.", "manage billing"},
	FlagOrgTransferOwnership: {"Hand ownership of the organisation to someone else.", "transfer ownership"},
	FlagOrgDelete:            {"Delete the organisation and all its data.", "delete the organisation"},
}

// roleGrants holds each role's default grants, built from matrix.
var roleGrants [numRoles + 1]Grants

func init() {
	for f := range Flag(NumFlags) {
		row := matrix[f]
		if row.name == "" || flagText[f].description == "" || flagText[f].action == "" || len(row.cells) != numRoles {
			panic(fmt.Sprintf("fieldops: permission matrix row %d (%q) is incomplete", f, row.name))
		}
		bit := uint64(1) << f
		for i := range numRoles {
			g := &roleGrants[RoleOwner+Role(i)]
			switch row.cells[i] {
			case 'A':
				g.all |= bit
			case 'O':
				g.own |= bit
			case '.':
			default:
				panic(fmt.Sprintf("fieldops: permission matrix row %q has cell %q", row.name, row.cells[i]))
			}
		}
	}
}

// AllFlags returns the flags in table order.
func AllFlags() []Flag {
	fs := make([]Flag, NumFlags)
	for i := range fs {
		fs[i] = Flag(i)
	}
	return fs
}

func (f Flag) valid() bool { return f < NumFlags }

// String returns the flag's name: "job.view".
func (f Flag) String() string {
	if f.valid() {
		return matrix[f].name
	}
	return fmt.Sprintf("Flag(%d)", uint8(f))
}

// Description says in a short sentence what the flag allows.
func (f Flag) Description() string {
	if f.valid() {
		return flagText[f].description
	}
	return ""
}

// action is the flag in words, to follow "permission to": "see jobs".
func (f Flag) action() string {
	if f.valid() {
		return flagText[f].action
	}
	return "do this"
}

// Locked reports whether the flag is one of the 🔒 grants, which no
// override can change.
func (f Flag) Locked() bool { return f.valid() && matrix[f].locked }

// ParseFlag reads a flag name such as "job.view".
func ParseFlag(s string) (Flag, error) {
	k := strings.ToLower(strings.TrimSpace(s))
	for f := range Flag(NumFlags) {
		if matrix[f].name == k {
			return f, nil
		}
	}
	return 0, Invalid("flag", "%q is not a permission. Use a name from the permission list, such as job.view or invoice.create.", s)
}

// Scope is how far a grant reaches.
type Scope uint8

const (
	ScopeNone Scope = iota // not granted
	ScopeOwn               // only jobs the member is assigned to and what hangs off them, or records they created
	ScopeAll               // everything in the organisation
)

var scopeNames = [...]string{ScopeNone: "none", ScopeOwn: "own", ScopeAll: "all"}

func (s Scope) valid() bool { return s <= ScopeAll }

// String returns "none", "own" or "all".
func (s Scope) String() string {
	if s.valid() {
		return scopeNames[s]
	}
	return fmt.Sprintf("Scope(%d)", uint8(s))
}

// ParseScope reads "none", "own" or "all".
func ParseScope(s string) (Scope, error) {
	k := strings.ToLower(strings.TrimSpace(s))
	for i, n := range scopeNames {
		if k == n {
			return Scope(i), nil
		}
	}
	return ScopeNone, Invalid("scope", "%q is not a scope. Choose all, own or none.", s)
}

// Grants is a member's effective permission set: bit f of all is set when
// flag f is granted for everything, bit f of own when it is granted for the
// member's own work only. A bit is never set in both. The zero value
// grants nothing.
type Grants struct {
	all, own uint64
}

// RoleGrants returns the role's grants as in the matrix. RoleNone and
// unknown roles get nothing.
func RoleGrants(r Role) Grants {
	if !r.valid() {
		return Grants{}
	}
	return roleGrants[r]
}

// Scope returns the scope of flag f in g.
func (g Grants) Scope(f Flag) Scope {
	if !f.valid() {
		return ScopeNone
	}
	bit := uint64(1) << f
	switch {
	case g.all&bit != 0:
		return ScopeAll
	case g.own&bit != 0:
		return ScopeOwn
	}
	return ScopeNone
}

// Covers reports whether g holds every flag of o with an equal or wider
// scope.
func (g Grants) Covers(o Grants) bool {
	return o.all&^g.all == 0 && o.own&^(g.all|g.own) == 0
}

// set returns g with flag f at scope s.
func (g Grants) set(f Flag, s Scope) Grants {
	bit := uint64(1) << f
	g.all &^= bit
	g.own &^= bit
	switch s {
	case ScopeAll:
		g.all |= bit
	case ScopeOwn:
		g.own |= bit
	}
	return g
}

// Override changes one flag for one member: ScopeNone revokes it, ScopeOwn
// narrows it to their own work (or grants it so), ScopeAll grants it.
type Override struct {
	Flag  Flag
	Scope Scope
}

// EffectiveGrants returns the role's grants with the overrides applied in
// order. Overrides of locked or unknown flags are ignored; an unknown scope
// revokes the flag. Whether the overrides are allowed at all is for
// CheckOverrides to say when they are saved.
func EffectiveGrants(r Role, overrides []Override) Grants {
	g := RoleGrants(r)
	if !r.valid() {
		return g
	}
	for _, o := range overrides {
		if !o.Flag.valid() || o.Flag.Locked() {
			continue
		}
		g = g.set(o.Flag, o.Scope) // an unknown scope falls through to none
	}
	return g
}

// Access is who is acting, with what they may do: built once per request
// by the store from the member's role and overrides.
type Access struct {
	OrgID, UserID int64
	Role          Role
	Grants        Grants
}

// Resource is what a check is about: a record of an organisation, who
// created it and who is assigned to it (for a job's photos, notes,
// certificates and defects: the job's engineers). A member with scope own
// may act on it when they created it or are assigned to it.
type Resource struct {
	OrgID     int64
	CreatedBy int64
	Assignees []int64
}

// Can reports whether a may use flag f on r. It is false for a resource of
// another organisation, whatever a holds. A nil r stands for the member's
// own organisation as a whole (settings, the team, reports): only a grant
// of scope all allows an action on it. To check creating a record, pass it
// with CreatedBy set to the member.
func (a *Access) Can(f Flag, r *Resource) bool {
	if a == nil || f >= NumFlags {
		return false
	}
	if r != nil && r.OrgID != a.OrgID {
		return false
	}
	bit := uint64(1) << f
	if a.Grants.all&bit != 0 {
		return true
	}
	if a.Grants.own&bit == 0 || r == nil || a.UserID == 0 {
		return false
	}
	if r.CreatedBy == a.UserID {
		return true
	}
	for _, id := range r.Assignees {
		if id == a.UserID {
			return true
		}
	}
	return false
}

// Scope returns a's scope for f: ScopeOwn means a list must be filtered to
// the member's own work, ScopeNone that it must not be shown.
func (a *Access) Scope(f Flag) Scope {
	if a == nil {
		return ScopeNone
	}
	return a.Grants.Scope(f)
}

// Require returns nil when a may use f on r (see Can). Otherwise it returns
// ENOTFOUND when r belongs to another organisation, so that nothing of it
// is revealed, and EFORBIDDEN naming the action otherwise.
func (a *Access) Require(f Flag, r *Resource) error {
	if a.Can(f, r) {
		return nil
	}
	if a == nil {
		return Errorf(EUNAUTHORIZED, "Please sign in again.")
	}
	if r != nil && r.OrgID != a.OrgID {
		return Errorf(ENOTFOUND, "We couldn't find that. It may have been deleted: check the link, or search for it again.")
	}
	switch {
	case f.Locked():
		return Errorf(EFORBIDDEN, "Only an Owner can %s. Ask an Owner of your organisation to do it.", f.action())
	case a.Grants.Scope(f) == ScopeOwn:
		return Errorf(EFORBIDDEN, "This isn't part of your own work: you can %s only where you are assigned to the job or created the record. Ask an Owner or Admin of your organisation if you need more access.", f.action())
	}
	return Errorf(EFORBIDDEN, "You don't have permission to %s. Ask an Owner or Admin of your organisation to give you access.", f.action())
}

// roleList writes roles as "a, b or c" using name (Role.String or
// Role.Label) and the last conjunction conj.
func roleList(roles []Role, name func(Role) string, conj string) string {
	ns := make([]string, len(roles))
	for i, r := range roles {
		ns[i] = name(r)
	}
	return joinOr(ns, conj)
}

// joinOr joins words as "a, b and c" with the given last conjunction.
func joinOr(ns []string, conj string) string {
	switch len(ns) {
	case 0:
		return ""
	case 1:
		return ns[0]
	}
	return strings.Join(ns[:len(ns)-1], ", ") + " " + conj + " " + ns[len(ns)-1]
}
