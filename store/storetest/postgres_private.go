package storetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldops/fieldops/store"
)

// PrivatePostgres is a PostgreSQL server of one test's own, which the
// test can stop and start again (a restart, as in a deploy or after a
// crash) to see what the service does meanwhile and afterwards. The
// shared server of MustOpenDB is not a test's to stop.
type PrivatePostgres struct {
	// URL is a migrated database on the server.
	URL string

	tb      testing.TB
	bin     string
	dir     string
	port    int
	cred    *syscall.Credential
	logFile string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartPostgres starts a private PostgreSQL server (initdb and postgres
// from the Debian packages, on a free loopback port, in a temporary
// directory) with one migrated database, whose URL is p.URL. It is
// stopped and removed when the test ends. Unlike MustOpenDB this ignores
// FIELDOPS_TEST_DATABASE_URL: it is for tests that stop the server.
func StartPostgres(tb testing.TB) *PrivatePostgres {
	tb.Helper()
	initdb, err := findPGBinary("initdb")
	if err != nil {
		tb.Fatalf("storetest: %v", err)
	}
	bin, err := findPGBinary("postgres")
	if err != nil {
		tb.Fatalf("storetest: %v", err)
	}
	cred, err := unprivileged()
	if err != nil {
		tb.Fatalf("storetest: %v", err)
	}
	// Not tb.TempDir: its parents are private to the test's user, and
	// PostgreSQL may run as another.
	dir, err := os.MkdirTemp("", "fieldops-pg-")
	if err != nil {
		tb.Fatalf("storetest: %v", err)
	}
	p := &PrivatePostgres{tb: tb, bin: bin, dir: dir, cred: cred, logFile: filepath.Join(dir, "postgres.log")}
	tb.Cleanup(func() {
		p.Stop()
		_ = os.RemoveAll(dir)
	})
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			tb.Fatalf("storetest: %v", err)
		}
	}
	cmd := exec.Command(initdb, "-D", filepath.Join(dir, "data"), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("storetest: initdb: %v: %s", err, out)
	}
	if p.port, err = freePort(); err != nil {
		tb.Fatalf("storetest: %v", err)
	}
	p.Start()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
	c, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Fatalf("storetest: private postgres: %v", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE fieldops"); err != nil {
		tb.Fatalf("storetest: private postgres: %v", err)
	}
	p.URL = withDB(admin, "fieldops")
	if _, _, err := store.Migrate(ctx, p.URL); err != nil {
		tb.Fatalf("storetest: private postgres: %v", err)
	}
	return p
}

// Start starts the server (again), on the same port and data, and waits
// until it accepts connections.
func (p *PrivatePostgres) Start() {
	p.tb.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return
	}
	log, err := os.OpenFile(p.logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		p.tb.Fatalf("storetest: %v", err)
	}
	defer log.Close()
	data := filepath.Join(p.dir, "data")
	cmd := exec.Command(p.bin, "-D", data, "-p", strconv.Itoa(p.port), "-k", p.dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=100", "-c", "shared_buffers=32MB")
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		p.tb.Fatalf("storetest: postgres: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	p.cmd, p.exited = cmd, exited
	u := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
	if err := waitFor(func(ctx context.Context) error {
		select {
		case <-exited:
			return errors.New("postgres exited")
		default:
		}
		c, err := pgx.Connect(ctx, u)
		if err != nil {
			return err
		}
		return c.Close(ctx)
	}); err != nil {
		out, _ := os.ReadFile(p.logFile)
		p.tb.Fatalf("storetest: private postgres did not start: %v\n%s", err, out)
	}
}

// Stop stops the server as a restart does (fast shutdown: sessions are
// terminated, open transactions roll back) and waits until it is gone.
// Stopping a stopped server does nothing.
func (p *PrivatePostgres) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	p.cmd, p.exited = nil, nil
}
