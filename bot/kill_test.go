package bot

// Crash tests: a child process (this test binary, running TestKillChild)
// runs the bot and kills itself with SIGKILL at a named step; then a
// normal bot runs on the same database and Bot API server, and every
// update must have been applied exactly once, every answer and
// notification delivered at least once.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/bot/telegramtest"
	"github.com/fieldops/fieldops/store"
)

// Environment of the child.
const (
	killEnvDB    = "FIELDOPS_KILL_DATABASE_URL"
	killEnvAPI   = "FIELDOPS_KILL_API_URL"
	killEnvToken = "FIELDOPS_KILL_TOKEN"
	killEnvUnit  = "FIELDOPS_KILL_UNIT"
	killEnvStep  = "FIELDOPS_KILL_STEP"
	killEnvNth   = "FIELDOPS_KILL_NTH"
)

func TestKill(t *testing.T) {
	for _, tc := range []struct {
		step string
		nth  int // die the nth time the step is reached
	}{
		{"intake.fetched", 1},   // the batch is not stored: Telegram sends it again
		{"intake.stored", 1},    // stored, not handled: handled by the next run
		{"intake.handled", 3},   // inside the unit of work: rolled back, handled again
		{"intake.committed", 3}, // handled, answers not sent: sent by the next run
		{"intake.answered", 3},  // answers sent, not recorded: sent again
		{"dispatch.claimed", 1}, // claimed, not sent: sent once the claim times out
		{"dispatch.sent", 2},    // sent, not recorded: sent again
	} {
		t.Run(tc.step, func(t *testing.T) {
			env := newEngineEnv(t, "", 1, 3, telegramtest.WithLimits(30, 1, 20, 20*time.Millisecond))
			ctx := context.Background()
			for _, u := range env.users {
				for k := range 2 {
					if _, err := env.pool.Exec(ctx, `INSERT INTO notifications (org_id, user_id, channel, kind, payload)
						VALUES ($1, $2, 'telegram', 'test.kill', jsonb_build_object('k', $3::int))`, env.orgs[0], env.members[u.ID], k); err != nil {
						t.Fatal(err)
					}
				}
			}
			env.sendMessages(env.users, "m", 4)

			var out bytes.Buffer
			cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.v")
			cmd.Env = append(os.Environ(), killEnvDB+"="+env.url, killEnvAPI+"="+env.srv.URL(), killEnvToken+"="+env.srv.Token(),
				killEnvUnit+"="+env.srv.RetryAfterUnit().String(), killEnvStep+"="+tc.step, killEnvNth+"="+strconv.Itoa(tc.nth))
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("the child did not die:\n%s", out.String())
			}
			ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
			if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("the child was not killed at %s (%v):\n%s", tc.step, cmd.ProcessState, out.String())
			}
			before := len(env.srv.Sent())
			// A restart takes longer than Telegram's rate windows; without
			// this pause the new process's fresh limiters could send into
			// the window the dead one filled and get a 429 (a retry, which
			// the check below counts).
			time.Sleep(5 * env.srv.RetryAfterUnit())

			// A new process; its clock is past the dead one's claims.
			b := env.newBot(t, func(o *Options) {
				o.Now = func() time.Time { return time.Now().Add(fieldops.ClaimTimeout + time.Minute) }
			})
			start(t, b.Run)
			for _, u := range env.users {
				eventually(t, 20*time.Second, fmt.Sprintf("chat %d's answers", u.ChatID()), func() bool {
					oks, notes := map[string]bool{}, 0
					for _, text := range env.answers(u.ChatID()) {
						if strings.HasPrefix(text, "ok ") {
							oks[text] = true
						} else {
							notes++
						}
					}
					return len(oks) == 4 && notes >= 2
				})
			}
			eventually(t, 10*time.Second, "everything recorded", func() bool {
				return env.count(t, `SELECT count(*) FROM telegram_updates WHERE status = 'done' AND calls_sent_at IS NOT NULL`) == 12 &&
					env.count(t, `SELECT count(*) FROM notifications WHERE sent_at IS NOT NULL`) == 6
			})
			env.checkOnce(t, 12)
			if n := env.count(t, `SELECT count(*) FROM notifications WHERE failed_at IS NOT NULL OR attempts > 0`); n != 0 {
				t.Fatalf("%d notifications failed or retried", n)
			}
			// Each chat's answers in order (a repeat after the crash
			// aside).
			for _, u := range env.users {
				last := -1
				for _, text := range env.answers(u.ChatID()) {
					var i int
					if _, err := fmt.Sscanf(text, "ok m%d", &i); err == nil {
						if i < last {
							t.Fatalf("chat %d answers out of order: %q", u.ChatID(), env.answers(u.ChatID()))
						}
						last = i
					}
				}
			}
			total := len(env.srv.Sent())
			t.Logf("killed at %s #%d: %d messages before, %d in all (18 distinct; %d repeated)", tc.step, tc.nth, before, total, total-18)
		})
	}
}

// TestKillChild is the process TestKill kills; it does nothing unless
// TestKill started it.
func TestKillChild(t *testing.T) {
	step := os.Getenv(killEnvStep)
	if step == "" {
		t.Skip("run by TestKill")
	}
	nth, _ := strconv.Atoi(os.Getenv(killEnvNth))
	unit, err := time.ParseDuration(os.Getenv(killEnvUnit))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv(killEnvDB)+"&pool_max_conns=16")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	db := store.NewDB(pool, nil)
	var mu sync.Mutex
	seen := map[string]int{}
	b, err := New(Services{Inbox: store.NewInbox(db), Outbox: store.NewOutbox(db)}, Options{
		Token: os.Getenv(killEnvToken), ServerURL: os.Getenv(killEnvAPI), PollTimeout: 2 * time.Second,
		TimeUnit: unit, RetryBackoff: 20 * time.Millisecond, Location: time.UTC,
		OnStep: func(s string) {
			mu.Lock()
			seen[s]++
			n := seen[s]
			mu.Unlock()
			if s == step && n == nth {
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {} // the signal is on its way
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	b.handler = auditHandler(t, pool, store.NewCustomerService(db), 0)
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_ = b.Run(rctx)
	mu.Lock()
	defer mu.Unlock()
	t.Fatalf("never reached %s #%d; steps seen: %v", step, nth, seen)
}
