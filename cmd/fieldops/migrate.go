package main

import (
	"context"
	"fmt"

	"github.com/fieldops/fieldops/store"
)

// runMigrate applies the embedded migrations.
func (m *Main) runMigrate(ctx context.Context, args []string) error {
	cfg, err := m.config("migrate", args, nil)
	if err != nil {
		return err
	}
	from, to, err := store.Migrate(ctx, cfg.Database.URL)
	if err != nil {
		return err
	}
	if from == to {
		fmt.Fprintf(m.Stdout, "Database schema is up to date (version %d); nothing to do.\n", to)
		return nil
	}
	fmt.Fprintf(m.Stdout, "Database schema migrated from version %d to %d.\n", from, to)
	return nil
}
