// Command fieldops runs the fieldops service and its operator tasks.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `fieldops: field operations for trade and compliance contractors.

Usage:
  fieldops <command> [flags]

Commands:
  serve        run the web server (admin panel, /livez, /readyz)
  migrate      apply the database migrations (safe to repeat and to run from several instances)
  permissions  print the role x permission matrix, the plans and the rules
  demo         create the demo organisation, once, and print how to sign in
  audit verify check every organisation's audit log hash chain; reports the first broken link
  version      print the version

Flags of serve, migrate, demo and audit verify:
  -config FILE  YAML configuration file (default: $FIELDOPS_CONFIG; none if unset).
                Settings come from defaults, then the file, then FIELDOPS_* variables;
                see config.example.yaml.
Flags of permissions:
  -format table|csv|json  (default table)
`

// errUsage marks a command line that could not be understood.
var errUsage = errors.New("usage")

// Main is the program, with its outside world injected for tests.
type Main struct {
	Stdout, Stderr io.Writer
	Environ        []string
	// Listening, when set, is told the address serve listens on.
	Listening func(addr string)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	m := &Main{Stdout: os.Stdout, Stderr: os.Stderr, Environ: os.Environ()}
	code := m.Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// Run runs one command and returns the exit code: 0 done, 1 failed, 2 the
// command line was wrong.
func (m *Main) Run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(m.Stderr, usage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		err = m.runServe(ctx, rest)
	case "migrate":
		err = m.runMigrate(ctx, rest)
	case "permissions":
		err = m.runPermissions(rest)
	case "demo":
		err = m.runDemo(ctx, rest)
	case "version":
		err = m.runVersion(rest)
	case "audit":
		err = m.runAudit(ctx, rest)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(m.Stdout, usage)
		return 0
	default:
		fmt.Fprintf(m.Stderr, "fieldops: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprint(m.Stderr, "\n"+usage)
		return 2
	case errors.Is(err, flag.ErrHelp):
		return 0
	default:
		fmt.Fprintf(m.Stderr, "fieldops %s: %v\n", args[0], err)
		return 1
	}
}

// flags returns a flag set that reports errors to Stderr and never exits.
func (m *Main) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("fieldops "+name, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.Usage = func() {}
	return fs
}

// parse parses args; a bad flag or a stray argument is a usage error.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return errUsage
	}
	return nil
}

// config parses the -config flag and loads the configuration.
func (m *Main) config(name string, args []string, more func(fs *flag.FlagSet)) (Config, error) {
	fs := m.flags(name)
	path := fs.String("config", m.getenv("FIELDOPS_CONFIG"), "YAML configuration file")
	if more != nil {
		more(fs)
	}
	if err := parse(fs, args); err != nil {
		return Config{}, err
	}
	return LoadConfig(*path, m.Environ)
}

func (m *Main) getenv(key string) string {
	for i := len(m.Environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(m.Environ[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

func (m *Main) runVersion(args []string) error {
	if err := parse(m.flags("version"), args); err != nil {
		return err
	}
	rev, goVersion := "", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
			}
		}
	}
	fmt.Fprintf(m.Stdout, "fieldops %s", version)
	if rev != "" {
		fmt.Fprintf(m.Stdout, " (%s)", rev)
	}
	fmt.Fprintf(m.Stdout, " %s\n", goVersion)
	return nil
}
