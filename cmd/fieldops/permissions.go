package main

import (
	"github.com/fieldops/fieldops"
)

// runPermissions prints the matrix; it needs no configuration.
func (m *Main) runPermissions(args []string) error {
	var format string
	fs := m.flags("permissions")
	fs.StringVar(&format, "format", "table", "table, csv or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := fieldops.WriteMatrix(m.Stdout, format); err != nil {
		if fieldops.ErrorCode(err) == fieldops.EINVALID {
			m.Stderr.Write([]byte(fieldops.ErrorMessage(err) + "\n"))
			return errUsage
		}
		return err
	}
	return nil
}
