package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"

	"github.com/fieldops/fieldops/migrations"
)

// versionTable is where tern records the applied migrations.
const versionTable = "schema_version"

// Migrate applies the embedded migrations that are not yet applied. It is
// idempotent, and safe when several instances start at once: tern holds a
// Postgres advisory lock while it migrates. It returns the schema version
// before and after.
func Migrate(ctx context.Context, databaseURL string) (from, to int32, err error) {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return 0, 0, fmt.Errorf("migrate: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return MigrateConn(ctx, conn)
}

// MigrateConn is Migrate on an open connection.
func MigrateConn(ctx context.Context, conn *pgx.Conn) (from, to int32, err error) {
	m, err := migrate.NewMigrator(ctx, conn, versionTable)
	if err != nil {
		return 0, 0, fmt.Errorf("migrate: %w", err)
	}
	if err := m.LoadMigrations(migrations.FS); err != nil {
		return 0, 0, fmt.Errorf("migrate: load: %w", err)
	}
	from, err = m.GetCurrentVersion(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("migrate: current version: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return from, 0, fmt.Errorf("migrate: %w", err)
	}
	to, err = m.GetCurrentVersion(ctx)
	if err != nil {
		return from, 0, fmt.Errorf("migrate: current version: %w", err)
	}
	return from, to, nil
}
