package fieldops

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// MatrixDoc is the permission matrix and the plans as a document, printed
// by `fieldops permissions`.
type MatrixDoc struct {
	Roles               []string  `json:"roles"`
	Flags               []FlagDoc `json:"flags"`
	Plans               []PlanDoc `json:"plans"`
	ExtraSeatPricePence int       `json:"extra_seat_price_pence"`
}

// FlagDoc is one row of the matrix. Grants maps a role name to "all" or
// "own"; a role without the flag is absent.
type FlagDoc struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Grants      map[string]string `json:"grants"`
	Locked      bool              `json:"locked"`
}

// PlanDoc is one plan.
type PlanDoc struct {
	Name          string   `json:"name"`
	PricePence    int      `json:"price_pence"`
	IncludedUsers int      `json:"included_users"`
	Roles         []string `json:"roles"`
	Overrides     bool     `json:"overrides"`
}

// Matrix returns the permission matrix and the plans.
func Matrix() MatrixDoc {
	d := MatrixDoc{ExtraSeatPricePence: ExtraSeatPricePence}
	for _, r := range AllRoles() {
		d.Roles = append(d.Roles, r.String())
	}
	for _, f := range AllFlags() {
		fd := FlagDoc{Name: f.String(), Description: f.Description(), Grants: map[string]string{}, Locked: f.Locked()}
		for _, r := range AllRoles() {
			if s := RoleGrants(r).Scope(f); s != ScopeNone {
				fd.Grants[r.String()] = s.String()
			}
		}
		d.Flags = append(d.Flags, fd)
	}
	for _, p := range Plans() {
		pd := PlanDoc{Name: p.Name, PricePence: p.PricePence, IncludedUsers: p.IncludedUsers, Roles: []string{}, Overrides: p.Overrides}
		for _, r := range p.Roles {
			pd.Roles = append(pd.Roles, r.String())
		}
		d.Plans = append(d.Plans, pd)
	}
	return d
}

// Rules returns the rules that hold whatever the matrix says, one sentence
// each.
func Rules() []string {
	return []string{
		"Deny by default: a permission not granted is refused, everywhere, on every channel.",
		"Own (◐) covers only the jobs a member is assigned to and what hangs off them (customer name and site, photos, notes, certificates, defects), and the records they created.",
		fmt.Sprintf("Per-user permissions (grant or revoke a permission, or narrow all to own) are on the %s plans; nobody can grant a permission, or a wider scope, than they hold.", planLabels(overridePlans(), "and")),
		"Locked (🔒) permissions come with the Owner role only and no per-user permission can change them.",
		"An Admin cannot change, remove or sign out an Owner; only an Owner makes another Owner.",
		"An organisation always has at least one Owner.",
		"Every check is scoped to the organisation: nothing of one organisation is ever visible to, or changeable by, another.",
		fmt.Sprintf("Active members and pending invitations each take a seat; each seat past a plan's included users costs %s/month.", formatPence(ExtraSeatPricePence)),
	}
}

// WriteMatrix writes the matrix, the plans and the rules to w as "table"
// (the default when format is empty), "csv" or "json".
func WriteMatrix(w io.Writer, format string) error {
	switch strings.ToLower(strings.TrimSpace(format)) {
	case "table", "":
		return writeMatrixTable(w)
	case "csv":
		return writeMatrixCSV(w)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(Matrix())
	}
	return Invalid("format", "%q is not a format. Choose table, csv or json.", format)
}

// writeMatrixCSV writes two tables separated by a blank line: the flags
// (header flag,owner,...,accountant,locked; cells all, own or empty), then
// the plans. Read it with csv.Reader.FieldsPerRecord = -1.
func writeMatrixCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	head := []string{"flag"}
	for _, r := range AllRoles() {
		head = append(head, r.String())
	}
	head = append(head, "locked")
	cw.Write(head)
	for _, f := range AllFlags() {
		row := []string{f.String()}
		for _, r := range AllRoles() {
			s := ""
			if sc := RoleGrants(r).Scope(f); sc != ScopeNone {
				s = sc.String()
			}
			row = append(row, s)
		}
		cw.Write(append(row, strconv.FormatBool(f.Locked())))
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return err
	}
	cw.Write([]string{"plan", "price_pence", "included_users", "extra_seat_price_pence", "roles", "overrides"})
	for _, p := range Plans() {
		roles := make([]string, len(p.Roles))
		for i, r := range p.Roles {
			roles[i] = r.String()
		}
		cw.Write([]string{p.Name, strconv.Itoa(p.PricePence), strconv.Itoa(p.IncludedUsers),
			strconv.Itoa(ExtraSeatPricePence), strings.Join(roles, " "), strconv.FormatBool(p.Overrides)})
	}
	cw.Flush()
	return cw.Error()
}

// writeMatrixTable writes the matrix as in PRODUCT.md: ✓ all, ◐ own,
// blank for none, 🔒 locked; then the plans and the rules.
func writeMatrixTable(w io.Writer) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "flag")
	for _, r := range AllRoles() {
		fmt.Fprintf(tw, "\t%s", r.Label())
	}
	fmt.Fprintln(tw)
	for _, f := range AllFlags() {
		fmt.Fprint(tw, f.String())
		for _, r := range AllRoles() {
			cell := ""
			switch RoleGrants(r).Scope(f) {
			case ScopeAll:
				cell = "✓"
			case ScopeOwn:
				cell = "◐"
			}
			if cell != "" && f.Locked() {
				cell += "🔒"
			}
			fmt.Fprintf(tw, "\t%s", cell)
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "plan\tprice\tusers included\troles\tper-user permissions")
	for _, p := range Plans() {
		roles := roleList(p.Roles, Role.Label, "and")
		if len(p.Roles) == len(AllRoles()) {
			roles = fmt.Sprintf("all %d", len(p.Roles))
		}
		fmt.Fprintf(tw, "%s\t%s/month\t%d\t%s\t%s\n", p.Label(), formatPence(p.PricePence), p.IncludedUsers, roles, yesNo(p.Overrides))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(&buf, "\nEach extra seat: %s/month.\n\nRules:\n", formatPence(ExtraSeatPricePence))
	for _, r := range Rules() {
		fmt.Fprintf(&buf, "- %s\n", r)
	}
	// tabwriter pads the empty cells at the end of a row; drop the padding.
	lines := strings.Split(buf.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	_, err := io.WriteString(w, strings.Join(lines, "\n"))
	return err
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
