package bot

// BenchmarkIntakeEndToEnd measures the whole path of an update: the local
// Bot API server queues a text message, the bot long-polls it, stores it
// in the inbox, handles it in a unit of work with a domain write and its
// audit entry, commits, and sends the answer, which the server receives.
// Flood limits are off on both sides (Options.NoRateLimits,
// telegramtest.WithoutLimits); 200 simulated users in 8 organisations.
//
//	go test -run '^$' -bench BenchmarkIntakeEndToEnd -benchtime 5000x ./bot/
//
// engine/...: the engine tests' handler (auditHandler: a customer created,
// with its audit entry). real/...: the bot's own handlers: each user is a
// linked engineer checked in on a job, so a text is saved as a note on it
// (Resolve, ChatState, OpenEntries with the job's title, AddNote with its
// audit entry; TouchLink once a minute per user).
//
// throughput: the users send as fast as they can; updates/s is what comes
// out at the other end. throughput-noop (engine only): a handler that only
// answers, for what the intake, inbox and sender cost alone.
// latency200, latency500: updates offered at a steady 200/s or 500/s;
// p50-ms, p99-ms and max-ms are from the update being queued at the server
// to the server receiving its answer.

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/bot/telegramtest"
	"github.com/fieldops/fieldops/store"
	"github.com/fieldops/fieldops/store/storetest"
)

const benchOrgs, benchPerOrg = 8, 25

func BenchmarkIntakeEndToEnd(b *testing.B) {
	b.Run("engine", func(b *testing.B) {
		env := newEngineEnv(b, "", benchOrgs, benchPerOrg, telegramtest.WithoutLimits())
		bot := env.newBot(b, func(o *Options) { o.NoRateLimits = true })
		start(b, bot.Run)
		benchIntake(b, env.srv, interleave(env.users), true)
	})
	b.Run("real", func(b *testing.B) {
		srv, users := realHandlersWorld(b)
		benchIntake(b, srv, users, false)
	})
}

// benchIntake runs the measurements on a running bot.
func benchIntake(b *testing.B, srv *telegramtest.Server, users []*telegramtest.User, noop bool) {
	// Warm up: connections, caches, the first audit entries.
	for _, u := range users {
		srv.SendText(u, "warm up")
	}
	waitSent(b, srv, srv.SentCount()+len(users), time.Minute)

	throughput := func(prefix string) func(b *testing.B) {
		return func(b *testing.B) {
			base := srv.SentCount()
			b.ResetTimer()
			began := time.Now()
			for i := range b.N {
				srv.SendText(users[i%len(users)], fmt.Sprintf("%s%d", prefix, i))
			}
			waitSent(b, srv, base+b.N, 5*time.Minute)
			elapsed := time.Since(began)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "updates/s")
		}
	}
	latency := func(rate int) func(b *testing.B) {
		return func(b *testing.B) {
			base := srv.SentCount()
			since := time.Now()
			queued := map[int64][]time.Time{} // by chat, in order
			b.ResetTimer()
			began := time.Now()
			for i := range b.N {
				if wait := time.Until(began.Add(time.Duration(i) * time.Second / time.Duration(rate))); wait > 0 {
					time.Sleep(wait)
				}
				u := users[i%len(users)]
				queued[u.ChatID()] = append(queued[u.ChatID()], time.Now())
				srv.SendText(u, fmt.Sprintf("L%d.%d", rate, i))
			}
			waitSent(b, srv, base+b.N, 5*time.Minute)
			b.StopTimer()
			// Each chat's answers come in its messages' order: pair them.
			// (A request is logged just after its message is counted.)
			var answered map[int64][]time.Time
			for wait := 0; ; wait++ {
				answered = map[int64][]time.Time{}
				n := 0
				for _, r := range srv.RequestsFor("sendMessage") {
					if r.Status == 200 && !r.At.Before(since) {
						answered[r.ChatID] = append(answered[r.ChatID], r.At)
						n++
					}
				}
				if n >= b.N || wait == 100 {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			var lat []time.Duration
			for chat, sent := range queued {
				got := answered[chat]
				slices.SortFunc(got, func(a, b time.Time) int { return a.Compare(b) })
				if len(got) != len(sent) {
					b.Fatalf("chat %d: %d answers to %d messages", chat, len(got), len(sent))
				}
				for i := range sent {
					lat = append(lat, got[i].Sub(sent[i]))
				}
			}
			slices.Sort(lat)
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
			b.ReportMetric(ms(lat[min(len(lat)-1, len(lat)*99/100)]), "p99-ms")
			b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
		}
	}
	b.Run("throughput", throughput("t"))
	if noop {
		b.Run("throughput-noop", throughput("noop"))
	}
	b.Run("latency200", latency(200))
	b.Run("latency500", latency(500))
}

// interleave orders users so that turns go round the organisations, as
// unrelated people's messages do (a domain write holds its
// organisation's row until it commits).
func interleave(users []*telegramtest.User) []*telegramtest.User {
	out := make([]*telegramtest.User, 0, len(users))
	for i := range benchPerOrg {
		for o := range benchOrgs {
			out = append(out, users[o*benchPerOrg+i])
		}
	}
	return out
}

// realHandlersWorld starts a bot with its own handlers, whose users are
// linked engineers, each checked in on a job of their own (interleaved
// across the organisations).
func realHandlersWorld(b testing.TB) (*telegramtest.Server, []*telegramtest.User) {
	b.Helper()
	ctx := context.Background()
	url := storetest.MustDatabaseURL(b)
	env := newEngineEnv(b, url, 0, 0, telegramtest.WithoutLimits())
	db := env.db
	sessions := store.NewSessionService(db, storetest.MustOpenRedis(b))
	tgsvc := store.NewTelegramService(db, sessions, env.srv.Me().Username)
	members, jobs := store.NewMemberService(db), store.NewJobService(db)
	members.Sessions = sessions
	orgs := store.NewOrganisationService(db)
	field := store.NewFieldWorkService(db, &store.PhotoFiles{Dir: b.TempDir()})
	// No outbox: notifications would be extra messages in the chats.
	svc := Services{Telegram: tgsvc, Inbox: env.inbox, Orgs: orgs, Members: members, Jobs: jobs, Field: field,
		Evidence: store.NewJobEvidenceService(db), Defects: store.NewDefectService(db), Certificates: store.NewCertificateService(db),
		Capacity: store.NewCapacityService(db)}
	must := func(err error) {
		b.Helper()
		if err != nil {
			b.Fatal(err)
		}
	}
	now := time.Now()
	users := make([][]*telegramtest.User, benchOrgs)
	for o := range benchOrgs {
		n := engineSeq.Add(1)
		owner, err := db.CreateUser(ctx, fmt.Sprintf("real.owner%d@example.co.uk", n), "Olive Owner", "")
		must(err)
		org, err := orgs.CreateOrganisation(fieldops.NewContext(ctx, fieldops.Actor{UserID: owner.ID, Channel: fieldops.ChannelWeb}),
			fieldops.NewOrganisation{Name: fmt.Sprintf("Real Sparks %d Ltd", n), Plan: "team"})
		must(err)
		octx := fieldops.NewContext(ctx, fieldops.Actor{UserID: owner.ID, OrgID: org.ID, Channel: fieldops.ChannelWeb})
		_, err = orgs.ChangePlan(octx, "team", benchPerOrg)
		must(err)
		name, addr, postcode, lat, lng := "Acme Lettings", "1 Deansgate, Manchester", "m3 1aa", 53.4794, -2.2453
		c, err := store.NewCustomerService(db).CreateCustomer(octx, fieldops.CustomerUpdate{Name: &name})
		must(err)
		s, err := store.NewSiteService(db).CreateSite(octx, fieldops.SiteUpdate{CustomerID: c.ID, Address: &addr, Postcode: &postcode,
			Latitude: &lat, Longitude: &lng})
		must(err)
		for i := range benchPerOrg {
			m, err := members.AddMember(octx, fieldops.NewMember{Email: fmt.Sprintf("real%d.%d@example.co.uk", n, i),
				Name: fmt.Sprintf("Engineer %d.%d", n, i), Role: fieldops.RoleEngineer})
			must(err)
			mctx := fieldops.NewContext(ctx, fieldops.Actor{UserID: m.UserID, OrgID: org.ID, Channel: fieldops.ChannelWeb})
			u := env.srv.NewUser(fmt.Sprintf("Real%d_%d", n, i), fmt.Sprintf("real%d_%d", n, i))
			tok, err := tgsvc.CreateLinkToken(mctx)
			must(err)
			link, err := tgsvc.Link(ctx, tok.Token, fieldops.TelegramUser{ID: u.ID, ChatID: u.ChatID(), Private: true,
				Username: u.Username, FirstName: u.FirstName})
			must(err)
			j, err := jobs.CreateJob(octx, fieldops.NewJob{CustomerID: c.ID, SiteID: s.ID, Type: "eicr", Title: fmt.Sprintf("EICR %d.%d", n, i),
				ScheduledStart: now.Add(-time.Hour), ScheduledEnd: now.Add(3 * time.Hour),
				Engineers: []fieldops.Assignment{{UserID: m.UserID, Primary: true}}})
			must(err)
			acc := 10.0
			_, err = field.CheckIn(fieldops.NewContext(ctx, link.Actor()), j.ID, fieldops.LocationInput{Lat: lat, Lng: lng, AccuracyM: &acc, MessageAt: now})
			must(err)
			users[o] = append(users[o], u)
		}
	}
	bot, err := New(svc, Options{Token: env.srv.Token(), ServerURL: env.srv.URL(), PollTimeout: 2 * time.Second, NoRateLimits: true,
		Location: time.UTC})
	must(err)
	start(b, bot.Run)
	var out []*telegramtest.User
	for i := range benchPerOrg {
		for o := range benchOrgs {
			out = append(out, users[o][i])
		}
	}
	return env.srv, out
}

// waitSent waits until the server has received n messages in all.
func waitSent(tb testing.TB, srv *telegramtest.Server, n int, timeout time.Duration) {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		ch := srv.Changed()
		if got := srv.SentCount(); got >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			tb.Fatalf("waited %v: %d messages sent, want %d", timeout, srv.SentCount(), n)
		}
	}
}
