// Package migrations holds the SQL schema of fieldops as tern migrations,
// embedded so the binary can apply them itself (fieldops migrate).
package migrations

import "embed"

// FS holds the numbered *.sql migration files.
//
//go:embed *.sql
var FS embed.FS
