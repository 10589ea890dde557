package fieldops_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fieldops/fieldops"
)

func TestWriteMatrix(t *testing.T) {
	t.Run("ErrInvalid", func(t *testing.T) {
		err := fieldops.WriteMatrix(new(bytes.Buffer), "xml")
		checkRuleErr(t, err, fieldops.EINVALID, "table, csv or json")
		if fieldops.ErrorField(err) != "format" {
			t.Errorf("field = %q, want format", fieldops.ErrorField(err))
		}
	})

	t.Run("JSON", func(t *testing.T) {
		var buf bytes.Buffer
		if err := fieldops.WriteMatrix(&buf, "json"); err != nil {
			t.Fatal(err)
		}
		var d fieldops.MatrixDoc
		dec := json.NewDecoder(&buf)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&d); err != nil {
			t.Fatal(err)
		}
		if len(d.Flags) != fieldops.NumFlags || len(d.Roles) != 7 || len(d.Plans) != 3 || d.ExtraSeatPricePence != 1000 {
			t.Errorf("doc has %d flags, %d roles, %d plans, extra seat %d", len(d.Flags), len(d.Roles), len(d.Plans), d.ExtraSeatPricePence)
		}
		for _, f := range d.Flags {
			for role, s := range f.Grants {
				if s != "all" && s != "own" {
					t.Errorf("%s: %s has %q; a role without the flag must be absent", f.Name, role, s)
				}
			}
		}
	})

	t.Run("CSV", func(t *testing.T) {
		var buf bytes.Buffer
		if err := fieldops.WriteMatrix(&buf, "csv"); err != nil {
			t.Fatal(err)
		}
		flagsPart, plansPart, ok := strings.Cut(buf.String(), "\n\n")
		if !ok {
			t.Fatal("no blank line between the flags and the plans")
		}
		rows, err := csv.NewReader(strings.NewReader(flagsPart)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := strings.Join(rows[0], ","), "flag,owner,admin,manager,engineer,office_staff,read_only,accountant,locked"; got != want {
			t.Errorf("header = %s, want %s", got, want)
		}
		if len(rows) != 1+fieldops.NumFlags {
			t.Fatalf("%d rows, want %d", len(rows), 1+fieldops.NumFlags)
		}
		for i, f := range fieldops.AllFlags() {
			row := rows[i+1]
			if row[0] != f.String() {
				t.Errorf("row %d is %s, want %s", i+1, row[0], f)
			}
			for j, r := range fieldops.AllRoles() {
				want := ""
				if s := fieldops.RoleGrants(r).Scope(f); s != fieldops.ScopeNone {
					want = s.String()
				}
				if row[1+j] != want {
					t.Errorf("%s/%s = %q, want %q", f, r, row[1+j], want)
				}
			}
		}
		plans, err := csv.NewReader(strings.NewReader(plansPart)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(plans) != 4 || plans[0][0] != "plan" || plans[2][0] != "team" || plans[2][1] != "4900" {
			t.Errorf("plans table = %v", plans)
		}
	})

	t.Run("Table", func(t *testing.T) {
		var buf bytes.Buffer
		if err := fieldops.WriteMatrix(&buf, "table"); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		lines := strings.Split(out, "\n")
		for _, f := range fieldops.AllFlags() {
			if !strings.Contains(out, "\n"+f.String()+" ") {
				t.Errorf("table has no row for %s", f)
			}
		}
		for _, l := range lines {
			if strings.HasSuffix(l, " ") {
				t.Errorf("trailing space in %q", l)
			}
			if strings.HasPrefix(l, "billing.manage ") && !strings.Contains(l, "✓🔒") {
				t.Errorf("billing.manage not locked: %q", l)
			}
			if strings.HasPrefix(l, "job.check_in ") && strings.Count(l, "◐") != 4 {
				t.Errorf("job.check_in should be own for four roles: %q", l)
			}
		}
		for _, s := range []string{"Office Staff", "Starter", "£49/month", "Rules:", "at least one Owner"} {
			if !strings.Contains(out, s) {
				t.Errorf("table does not contain %q", s)
			}
		}
	})
}

func TestRules(t *testing.T) {
	rules := strings.Join(fieldops.Rules(), "\n")
	for _, s := range []string{"Deny by default", "Team and Business", "than they hold", "wider scope", "🔒", "Owner", "at least one Owner", "organisation"} {
		if !strings.Contains(rules, s) {
			t.Errorf("rules do not mention %q", s)
		}
	}
}
