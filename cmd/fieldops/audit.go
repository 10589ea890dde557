package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/fieldops/fieldops/store"
)

// errChainBroken makes `fieldops audit verify` exit non-zero.
var errChainBroken = errors.New("the audit log has been tampered with")

// runAudit runs `fieldops audit verify`: it recomputes every
// organisation's hash chain and reports the first broken link.
func (m *Main) runAudit(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprintln(m.Stderr, "fieldops audit: the only subcommand is verify")
		return errUsage
	}
	cfg, err := m.config("audit verify", args[1:], nil)
	if err != nil {
		return err
	}
	pool, err := store.OpenPool(ctx, cfg.Database.URL, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	reports, err := store.NewDB(pool, nil).VerifyAllChains(ctx)
	if err != nil {
		return err
	}
	broken := 0
	for _, r := range reports {
		if r.Broken == 0 {
			fmt.Fprintf(m.Stdout, "ok      organisation %d %q: %d events, chain intact\n", r.OrgID, r.OrgName, r.Events)
			continue
		}
		broken++
		fmt.Fprintf(m.Stdout, "BROKEN  organisation %d %q: first broken link at event #%d of %d\n", r.OrgID, r.OrgName, r.Broken, r.Events)
	}
	if broken > 0 {
		return fmt.Errorf("%w in %d organisation(s)", errChainBroken, broken)
	}
	fmt.Fprintf(m.Stdout, "%d organisation(s) checked; every chain is intact.\n", len(reports))
	return nil
}
