package fieldops_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/fieldops/fieldops"

// importRules are STYLE.md's import rules: for each package of this
// module, the packages of this module it may import. Third-party modules
// are allowed except in the root and migrations, which take the standard
// library only.
var importRules = []struct {
	pkg      string // a package, or a prefix ending in "/"
	internal []string
	stdOnly  bool
}{
	{pkg: module, stdOnly: true},
	{pkg: module + "/migrations", stdOnly: true},
	{pkg: module + "/store", internal: []string{module, module + "/migrations"}},
	{pkg: module + "/store/storetest", internal: []string{module, module + "/migrations", module + "/store"}},
	{pkg: module + "/bot/telegramtest", internal: []string{module}},
	{pkg: module + "/bot", internal: []string{module}},
	{pkg: module + "/admin", internal: []string{module}},
	{pkg: module + "/scheduler", internal: []string{module}},
	{pkg: module + "/cmd/", internal: []string{"*"}},
}

func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, module+"/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, imports := fields[0], fields[1:]
		rule := -1
		for i, r := range importRules {
			if pkg == r.pkg || (strings.HasSuffix(r.pkg, "/") && strings.HasPrefix(pkg, r.pkg)) {
				rule = i
				break
			}
		}
		if rule < 0 {
			t.Errorf("package %s has no import rule: add it to importRules (and to docs/ARCHITECTURE.md)", pkg)
			continue
		}
		seen++
		r := importRules[rule]
		for _, imp := range imports {
			switch {
			case !strings.Contains(strings.SplitN(imp, "/", 2)[0], "."):
				// standard library
			case r.stdOnly:
				t.Errorf("%s imports %s: it may import the standard library only", pkg, imp)
			case imp == module || strings.HasPrefix(imp, module+"/"):
				if !allowed(r.internal, imp) {
					t.Errorf("%s imports %s: it may import only %v of this module", pkg, imp, r.internal)
				}
			}
		}
	}
	if seen < 4 {
		t.Fatalf("go list found only %d packages; is the module path %s?", seen, module)
	}
}

func allowed(list []string, imp string) bool {
	for _, a := range list {
		if a == "*" || a == imp {
			return true
		}
	}
	return false
}
