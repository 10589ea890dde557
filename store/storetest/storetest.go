// Package storetest starts real PostgreSQL and Redis servers for tests and
// hands each test its own database.
//
// The servers are started once per test binary, from the Debian binaries
// (initdb and postgres; redis-server), on free loopback ports under a
// temporary directory, unless FIELDOPS_TEST_DATABASE_URL and
// FIELDOPS_TEST_REDIS_URL name running servers. A package that uses them
// calls Main from its TestMain so that the servers are stopped at the end.
//
// Each test gets a fresh database cloned from a migrated template, so
// tests can run in parallel; for Redis each test gets its own logical
// database, flushed before use.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/fieldops/fieldops/store"
)

const templateDB = "fieldops_template"

// servers holds what was started (or found) for this test binary.
type servers struct {
	pgAdminURL string // a URL on the maintenance database
	redisURL   string
	redisDBs   int

	dir   string
	procs []*exec.Cmd

	nextDB    atomic.Int64
	nextRedis atomic.Int64
}

var (
	startOnce sync.Once
	started   *servers
	startErr  error
)

// Main runs the tests of a package and stops the servers afterwards. Call
// it from TestMain: func TestMain(m *testing.M) { storetest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	if started != nil {
		started.stop()
	}
	os.Exit(code)
}

func get(tb testing.TB) *servers {
	tb.Helper()
	startOnce.Do(func() { started, startErr = start() })
	if startErr != nil {
		tb.Fatalf("storetest: %v", startErr)
	}
	return started
}

func start() (*servers, error) {
	s := &servers{}
	pgURL, redisURL := os.Getenv("FIELDOPS_TEST_DATABASE_URL"), os.Getenv("FIELDOPS_TEST_REDIS_URL")
	if pgURL == "" || redisURL == "" {
		dir, err := os.MkdirTemp("", "fieldops-test-")
		if err != nil {
			return nil, err
		}
		s.dir = dir
	}
	var err error
	if pgURL == "" {
		pgURL, err = s.startPostgres()
		if err != nil {
			s.stop()
			return nil, fmt.Errorf("start postgres: %w", err)
		}
	}
	s.pgAdminURL = pgURL
	if redisURL == "" {
		redisURL, err = s.startRedis()
		if err != nil {
			s.stop()
			return nil, fmt.Errorf("start redis: %w", err)
		}
	}
	s.redisURL = redisURL
	if err := s.prepare(); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// prepare builds the migrated template database and learns how many
// logical databases Redis has.
func (s *servers) prepare() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, s.pgAdminURL)
	if err != nil {
		return fmt.Errorf("connect postgres: %w", err)
	}
	defer admin.Close(ctx)
	// A template left over from an earlier run against the same server
	// may hold an older schema: build it afresh.
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+templateDB+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop template: %w", err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+templateDB); err != nil {
		return fmt.Errorf("create template: %w", err)
	}
	if _, _, err := store.Migrate(ctx, withDB(s.pgAdminURL, templateDB)); err != nil {
		return err
	}

	opt, err := redis.ParseURL(s.redisURL)
	if err != nil {
		return fmt.Errorf("redis url: %w", err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	v, err := rdb.ConfigGet(ctx, "databases").Result()
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	s.redisDBs, _ = strconv.Atoi(v["databases"])
	if s.redisDBs < 1 {
		s.redisDBs = 16
	}
	return nil
}

// MustOpenDB returns a pool on a new database of the test's own, migrated,
// dropped when the test ends.
func MustOpenDB(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	pool, err := pgxpool.New(context.Background(), MustDatabaseURL(tb))
	if err != nil {
		tb.Fatalf("storetest: open pool: %v", err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// MustDatabaseURL creates a new migrated database for the test and returns
// its URL; the database is dropped when the test ends.
func MustDatabaseURL(tb testing.TB) string {
	tb.Helper()
	s := get(tb)
	name := fmt.Sprintf("t_%d_%d", os.Getpid(), s.nextDB.Add(1))
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, s.pgAdminURL)
	if err != nil {
		tb.Fatalf("storetest: connect: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+templateDB); err != nil {
		tb.Fatalf("storetest: create database: %v", err)
	}
	// Registered first, so it runs after the pool of MustOpenDB is closed.
	tb.Cleanup(func() {
		c, err := pgx.Connect(ctx, s.pgAdminURL)
		if err != nil {
			tb.Errorf("storetest: drop %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("storetest: drop %s: %v", name, err)
		}
	})
	return withDB(s.pgAdminURL, name)
}

// MustOpenRedis returns a client on an empty logical database of the
// test's own.
func MustOpenRedis(tb testing.TB) *redis.Client {
	tb.Helper()
	opt, err := redis.ParseURL(MustRedisURL(tb))
	if err != nil {
		tb.Fatalf("storetest: %v", err)
	}
	rdb := redis.NewClient(opt)
	tb.Cleanup(func() { rdb.Close() })
	return rdb
}

// MustRedisURL returns the URL of an empty logical Redis database for the
// test. Numbers are handed out in turn; with more parallel tests than
// databases they would be shared, so the test server has 10,000.
func MustRedisURL(tb testing.TB) string {
	tb.Helper()
	s := get(tb)
	n := int(s.nextRedis.Add(1)) % s.redisDBs
	u, err := url.Parse(s.redisURL)
	if err != nil {
		tb.Fatalf("storetest: redis url: %v", err)
	}
	u.Path = "/" + strconv.Itoa(n)
	opt, err := redis.ParseURL(u.String())
	if err != nil {
		tb.Fatalf("storetest: redis url: %v", err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.FlushDB(context.Background()).Err(); err != nil {
		tb.Fatalf("storetest: flush redis db %d: %v", n, err)
	}
	return u.String()
}

// RedisServerURL returns the URL of the Redis server itself (database 0),
// for tests that stop or inspect the server.
func RedisServerURL(tb testing.TB) string {
	tb.Helper()
	return get(tb).redisURL
}

func withDB(rawURL, db string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	u.Path = "/" + db
	return u.String()
}

// startPostgres runs initdb and postgres in s.dir. PostgreSQL refuses to
// run as root, so when the tests run as root the server runs as the
// postgres user (or nobody).
func (s *servers) startPostgres() (string, error) {
	initdb, err := findPGBinary("initdb")
	if err != nil {
		return "", err
	}
	postgres, err := findPGBinary("postgres")
	if err != nil {
		return "", err
	}
	cred, err := unprivileged()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(s.dir, "pg")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if cred != nil {
		for _, p := range []string{s.dir, dir} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return "", err
			}
		}
	}
	data := filepath.Join(dir, "data")
	cmd := exec.Command(initdb, "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("initdb: %v: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	logFile, err := os.Create(filepath.Join(s.dir, "postgres.log"))
	if err != nil {
		return "", err
	}
	cmd = exec.Command(postgres, "-D", data, "-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=128MB")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("postgres: %w", err)
	}
	s.procs = append(s.procs, cmd)
	u := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	if err := waitFor(func(ctx context.Context) error {
		c, err := pgx.Connect(ctx, u)
		if err != nil {
			return err
		}
		return c.Close(ctx)
	}); err != nil {
		log, _ := os.ReadFile(logFile.Name())
		return "", fmt.Errorf("postgres did not start: %w\n%s", err, log)
	}
	return u, nil
}

func (s *servers) startRedis() (string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", errors.New("redis-server not found: install the Debian package redis-server (apt-get install redis-server)")
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(s.dir, "redis")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	logFile, err := os.Create(filepath.Join(s.dir, "redis.log"))
	if err != nil {
		return "", err
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--databases", "10000", "--daemonize", "no")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("redis-server: %w", err)
	}
	s.procs = append(s.procs, cmd)
	u := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	opt, _ := redis.ParseURL(u)
	if err := waitFor(func(ctx context.Context) error {
		rdb := redis.NewClient(opt)
		defer rdb.Close()
		return rdb.Ping(ctx).Err()
	}); err != nil {
		log, _ := os.ReadFile(logFile.Name())
		return "", fmt.Errorf("redis did not start: %w\n%s", err, log)
	}
	return u, nil
}

// StartRedis starts a private redis-server for the test alone, on a free
// loopback port with its directory under tb.TempDir(), and returns its
// URL (database 0) and a function that stops it at once, as a crash
// would (SIGKILL), so that the test can see what the service does with
// Redis gone. Calling stop again does nothing; the server is stopped at
// the end of the test in any case. Unlike MustRedisURL this ignores
// FIELDOPS_TEST_REDIS_URL: a shared server is not the test's to stop.
func StartRedis(tb testing.TB) (url string, stop func()) {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatal("storetest: redis-server not found: install the Debian package redis-server (apt-get install redis-server)")
	}
	dir := tb.TempDir()
	logFile, err := os.Create(filepath.Join(dir, "redis.log"))
	if err != nil {
		tb.Fatalf("storetest: %v", err)
	}
	defer logFile.Close()
	port, err := freePort()
	if err != nil {
		tb.Fatalf("storetest: %v", err)
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("storetest: redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			<-exited
		})
	}
	tb.Cleanup(stop)
	// The server that answers must be this one: another test may have
	// taken the port between freePort and the bind.
	pid := "process_id:" + strconv.Itoa(cmd.Process.Pid) + "\r\n"
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := waitFor(func(ctx context.Context) error {
		select {
		case <-exited:
			return errors.New("redis-server exited")
		default:
		}
		rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		defer rdb.Close()
		info, err := rdb.Info(ctx, "server").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, pid) {
			return fmt.Errorf("another server answers on %s", addr)
		}
		return nil
	}); err != nil {
		stop()
		log, _ := os.ReadFile(logFile.Name())
		tb.Fatalf("storetest: private redis did not start: %v\n%s", err, log)
	}
	url = "redis://" + addr + "/0"
	return url, stop
}

func (s *servers) stop() {
	for _, p := range s.procs {
		if p.Process == nil {
			continue
		}
		// SIGINT is PostgreSQL's fast shutdown; Redis stops on it too.
		_ = p.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}

func waitFor(try func(ctx context.Context) error) error {
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = try(ctx)
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// findPGBinary looks on PATH, then in Debian's versioned directories.
func findPGBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(matches) > 0 {
		return matches[len(matches)-1], nil
	}
	return "", fmt.Errorf("%s not found: install the Debian package postgresql (apt-get install postgresql)", name)
}

// unprivileged returns the credential to run PostgreSQL under when the
// tests run as root, and nil otherwise.
func unprivileged() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("running as root and neither a postgres nor a nobody user exists to run PostgreSQL as")
}
