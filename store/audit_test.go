package store_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldops/fieldops"
)

// tamper runs statements on audit_events with its triggers disabled, as
// someone with the table owner's rights could.
func tamper(tb testing.TB, e *env, sql string, args ...any) {
	tb.Helper()
	ctx := context.Background()
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback(ctx)
	for _, q := range []struct {
		sql  string
		args []any
	}{{`ALTER TABLE audit_events DISABLE TRIGGER USER`, nil}, {sql, args}, {`ALTER TABLE audit_events ENABLE TRIGGER USER`, nil}} {
		if _, err := tx.Exec(ctx, q.sql, q.args...); err != nil {
			tb.Fatalf("%s: %v", q.sql, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		tb.Fatal(err)
	}
}

func maxSeq(tb testing.TB, e *env, orgID int64) int64 {
	tb.Helper()
	return int64(count(tb, e, `SELECT max(seq) FROM audit_events WHERE org_id = $1`, orgID))
}

func TestVerifyChain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	// A few organisations working side by side, each with a handful of
	// changes; each subtest then breaks one organisation's chain.
	work := func(t *testing.T, s *smallOrg) {
		t.Helper()
		c := mustCustomer(t, e, s.ownerCtx, "Chain Customer")
		site := mustSite(t, e, s.ownerCtx, c.ID)
		mustJob(t, e, s.ownerCtx, c.ID, site.ID, time.Date(2027, 5, 1, 9, 0, 0, 0, time.UTC), fieldops.Assignment{UserID: s.engineer, Primary: true})
		if _, err := e.customers.UpdateCustomer(s.ownerCtx, c.ID, fieldops.CustomerUpdate{Notes: ptr(`Gate code "1234" <back> & side`)}); err != nil {
			t.Fatal(err)
		}
		if n, err := e.audit.VerifyChain(s.ownerCtx); err != nil || n != 0 {
			t.Fatalf("VerifyChain before tampering = %d, %v", n, err)
		}
	}

	for _, tt := range []struct {
		name string
		// breakIt tampers and returns the seq VerifyChain should report.
		breakIt func(t *testing.T, s *smallOrg) int64
	}{
		{"UpdateChanges", func(t *testing.T, s *smallOrg) int64 {
			tamper(t, e, `UPDATE audit_events SET changes = changes || '{"name": "Someone Else"}' WHERE org_id = $1 AND seq = 3`, s.id)
			return 3
		}},
		{"UpdateActorLabel", func(t *testing.T, s *smallOrg) int64 {
			tamper(t, e, `UPDATE audit_events SET actor_label = 'Nobody' WHERE org_id = $1 AND seq = 2`, s.id)
			return 2
		}},
		{"UpdateTime", func(t *testing.T, s *smallOrg) int64 {
			tamper(t, e, `UPDATE audit_events SET at = at - interval '1 day' WHERE org_id = $1 AND seq = 1`, s.id)
			return 1
		}},
		{"UpdateIP", func(t *testing.T, s *smallOrg) int64 {
			tamper(t, e, `UPDATE audit_events SET ip = '198.51.100.1' WHERE org_id = $1 AND seq = 4`, s.id)
			return 4
		}},
		{"DeleteLast", func(t *testing.T, s *smallOrg) int64 {
			last := maxSeq(t, e, s.id)
			tamper(t, e, `DELETE FROM audit_events WHERE org_id = $1 AND seq = $2`, s.id, last)
			return last
		}},
		{"DeleteMiddle", func(t *testing.T, s *smallOrg) int64 {
			tamper(t, e, `DELETE FROM audit_events WHERE org_id = $1 AND seq = 3`, s.id)
			return 3
		}},
		{"SwapHashes", func(t *testing.T, s *smallOrg) int64 {
			tamper(t, e, `UPDATE audit_events SET prev_hash = NULL WHERE org_id = $1 AND seq = 5`, s.id)
			return 5
		}},
	} {
		t.Run(tt.name+"/OK", func(t *testing.T) {
			t.Parallel()
			s := mustSmallOrg(t, e, "team")
			work(t, s)
			want := tt.breakIt(t, s)
			got, err := e.audit.VerifyChain(s.ownerCtx)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("VerifyChain = %d, want %d", got, want)
			}
		})
	}
	t.Run("Intact/OK", func(t *testing.T) {
		t.Parallel()
		s := mustSmallOrg(t, e, "team")
		work(t, s)
		if n, err := e.audit.VerifyChain(s.ownerCtx); err != nil || n != 0 {
			t.Fatalf("VerifyChain = %d, %v", n, err)
		}
	})
}

// TestVerifyChainValues: what a change records must read back from jsonb
// as it was hashed, whatever the values.
func TestVerifyChainValues(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tt := range []struct {
		name     string
		lat, lng float64
		address  string
		bug      string
	}{
		{"Manchester", 53.4808, -2.2426, "1 Piccadilly", ""},
		{"Greenwich", 51.4779, -0.0015, "Blackheath Ave", ""},
		{"Unicode", 51.5, -0.1, "Flat 2, Café Rouge — 5 Ørsted Way \u2028 <b>&</b>", ""},
		{"TinyLongitude", 51.4779, 5e-7, "Prime Meridian Walk",
			"audit changes are hashed as Go's encoding/json writes them (5e-07 → \"5e-7\") but re-read from jsonb, which prints numeric 0.0000005; canonicalJSON must normalise numbers the way jsonb does (or hash the jsonb text)"},
		{"Exponent", 1e-5, 1e-7, "Gulf of Guinea buoy",
			"same as TinyLongitude: small floats are written in exponent form by Go and in plain form by jsonb"},
	} {
		t.Run(tt.name+"/OK", func(t *testing.T) {
			s := mustSmallOrg(t, e, "team")
			c := mustCustomer(t, e, s.ownerCtx, "Values Ltd")
			if _, err := e.sites.CreateSite(s.ownerCtx, fieldops.SiteUpdate{CustomerID: c.ID, Address: ptr(tt.address),
				Latitude: ptr(tt.lat), Longitude: ptr(tt.lng)}); err != nil {
				t.Fatal(err)
			}
			n, err := e.audit.VerifyChain(s.ownerCtx)
			if err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				if tt.bug != "" {
					t.Fatalf("VerifyChain = %d for an untampered log: %s", n, tt.bug)
				}
				t.Fatalf("VerifyChain = %d for an untampered log", n)
			}
		})
	}
}

// fakeClock is a settable clock for the store.
type fakeClock struct{ now atomic.Pointer[time.Time] }

func (c *fakeClock) set(t time.Time) { c.now.Store(&t) }
func (c *fakeClock) Now() time.Time  { return *c.now.Load() }

func TestFindAuditEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	clock := &fakeClock{}
	t0 := time.Date(2027, 6, 1, 8, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	clock.set(at(0))
	e.db.Now = clock.Now

	s := mustSmallOrg(t, e, "team") // org.create, member.add (the engineer) at t0
	other := mustSmallOrg(t, e, "team")
	office := mustMember(t, e, s.ownerCtx, fieldops.RoleOfficeStaff)
	officeCtx := actorCtx(s.id, office.UserID)
	clock.set(at(1))
	c1 := mustCustomer(t, e, s.ownerCtx, "First")
	mustCustomer(t, e, other.ownerCtx, "Elsewhere")
	clock.set(at(2))
	c2 := mustCustomer(t, e, officeCtx, "Second")
	if _, err := e.customers.UpdateCustomer(officeCtx, c1.ID, fieldops.CustomerUpdate{Name: ptr("First Renamed")}); err != nil {
		t.Fatal(err)
	}
	clock.set(at(3))
	if _, err := e.customers.UpdateCustomer(s.ownerCtx, c2.ID, fieldops.CustomerUpdate{Phone: ptr("0113 496 0000")}); err != nil {
		t.Fatal(err)
	}
	// Twenty more in groups of four sharing a time, for paging.
	for i := range 20 {
		clock.set(at(4 + i/4))
		mustCustomer(t, e, s.ownerCtx, fmt.Sprintf("Bulk %02d", i))
	}

	all, next, err := e.audit.FindAuditEvents(s.ownerCtx, fieldops.AuditFilter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if next != "" || len(all) != count(t, e, `SELECT count(*) FROM audit_events WHERE org_id = $1`, s.id) || len(all) != 27 {
		t.Fatalf("%d events (next %q), want all 27 of the organisation", len(all), next)
	}
	newestFirst := func(a, b *fieldops.AuditEvent) int {
		if c := b.At.Compare(a.At); c != 0 {
			return c
		}
		return int(b.ID - a.ID)
	}
	if !slices.IsSortedFunc(all, newestFirst) {
		t.Fatal("events are not newest first")
	}
	ids := func(evs []*fieldops.AuditEvent) []int64 {
		out := make([]int64, len(evs))
		for i, ev := range evs {
			out[i] = ev.ID
		}
		return out
	}
	where := func(keep func(*fieldops.AuditEvent) bool) []int64 {
		var out []*fieldops.AuditEvent
		for _, ev := range all {
			if keep(ev) {
				out = append(out, ev)
			}
		}
		return ids(out)
	}

	for _, tt := range []struct {
		name string
		f    fieldops.AuditFilter
		n    int
		keep func(*fieldops.AuditEvent) bool
	}{
		{"Actor", fieldops.AuditFilter{ActorUserID: office.UserID}, 2,
			func(ev *fieldops.AuditEvent) bool { return ev.ActorUserID == office.UserID }},
		{"Action", fieldops.AuditFilter{Action: "customer.update"}, 2,
			func(ev *fieldops.AuditEvent) bool { return ev.Action == "customer.update" }},
		{"Target", fieldops.AuditFilter{TargetType: "customer", TargetID: fmt.Sprint(c1.ID)}, 2,
			func(ev *fieldops.AuditEvent) bool {
				return ev.TargetType == "customer" && ev.TargetID == fmt.Sprint(c1.ID)
			}},
		{"TargetType", fieldops.AuditFilter{TargetType: "member"}, 2,
			func(ev *fieldops.AuditEvent) bool { return ev.TargetType == "member" }},
		{"From", fieldops.AuditFilter{From: at(2), Limit: 500}, 23,
			func(ev *fieldops.AuditEvent) bool { return !ev.At.Before(at(2)) }},
		{"To", fieldops.AuditFilter{To: at(2)}, 4,
			func(ev *fieldops.AuditEvent) bool { return ev.At.Before(at(2)) }},
		{"FromTo", fieldops.AuditFilter{From: at(1), To: at(3)}, 3,
			func(ev *fieldops.AuditEvent) bool { return !ev.At.Before(at(1)) && ev.At.Before(at(3)) }},
		{"ActorAndDay", fieldops.AuditFilter{ActorUserID: s.owner, From: at(3), To: at(4)}, 1,
			func(ev *fieldops.AuditEvent) bool { return ev.ActorUserID == s.owner && ev.At.Equal(at(3)) }},
		{"NoMatch", fieldops.AuditFilter{Action: "job.assign"}, 0,
			func(ev *fieldops.AuditEvent) bool { return false }},
	} {
		t.Run(tt.name+"/OK", func(t *testing.T) {
			got, _, err := e.audit.FindAuditEvents(s.ownerCtx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			want := where(tt.keep)
			if len(want) != tt.n {
				t.Fatalf("the test expects %d events, the log holds %d", tt.n, len(want))
			}
			if !slices.Equal(ids(got), want) {
				t.Fatalf("FindAuditEvents(%+v) = %v, want %v", tt.f, ids(got), want)
			}
		})
	}

	for _, limit := range []int{1, 4, 5, 7, 26} {
		t.Run(fmt.Sprintf("Pages/Limit%d/OK", limit), func(t *testing.T) {
			var got []int64
			after := ""
			for pages := 1; ; pages++ {
				evs, next, err := e.audit.FindAuditEvents(s.ownerCtx, fieldops.AuditFilter{Limit: limit, After: after})
				if err != nil {
					t.Fatal(err)
				}
				if len(evs) == 0 || len(evs) > limit {
					t.Fatalf("page %d has %d events", pages, len(evs))
				}
				got = append(got, ids(evs)...)
				if next == "" {
					break
				}
				if pages > 30 {
					t.Fatal("paging does not end")
				}
				after = next
			}
			if !slices.Equal(got, ids(all)) {
				t.Fatalf("pages gave %v, want %v", got, ids(all))
			}
		})
	}
	t.Run("PagesFiltered/OK", func(t *testing.T) {
		var got []int64
		after := ""
		for {
			evs, next, err := e.audit.FindAuditEvents(s.ownerCtx, fieldops.AuditFilter{Action: "customer.create", Limit: 3, After: after})
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ids(evs)...)
			if next == "" {
				break
			}
			after = next
		}
		if want := where(func(ev *fieldops.AuditEvent) bool { return ev.Action == "customer.create" }); !slices.Equal(got, want) || len(want) != 22 {
			t.Fatalf("pages gave %v, want %v", got, want)
		}
	})
	if n, err := e.audit.VerifyChain(s.ownerCtx); err != nil || n != 0 {
		t.Fatalf("VerifyChain = %d, %v", n, err)
	}
}

// TestAuditEventActor: an entry records who, from which channel and IP.
func TestAuditEventActor(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := mustSmallOrg(t, e, "team")
	var ownerName string
	if err := e.pool.QueryRow(context.Background(), `SELECT name FROM users WHERE id = $1`, s.owner).Scan(&ownerName); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		actor   fieldops.Actor
		channel fieldops.Channel
		ip      string
	}{
		{"WebIPv4", fieldops.Actor{Channel: fieldops.ChannelWeb, IP: netip.MustParseAddr("203.0.113.7")}, fieldops.ChannelWeb, "203.0.113.7"},
		{"APIIPv6", fieldops.Actor{Channel: fieldops.ChannelAPI, IP: netip.MustParseAddr("2001:db8::1")}, fieldops.ChannelAPI, "2001:db8::1"},
		{"Mapped", fieldops.Actor{Channel: fieldops.ChannelWeb, IP: netip.MustParseAddr("::ffff:192.0.2.10")}, fieldops.ChannelWeb, "192.0.2.10"},
		{"Telegram", fieldops.Actor{Channel: fieldops.ChannelTelegram}, fieldops.ChannelTelegram, ""},
		{"NoChannel", fieldops.Actor{}, fieldops.ChannelSystem, ""},
	} {
		t.Run(tt.name+"/OK", func(t *testing.T) {
			a := tt.actor
			a.UserID, a.OrgID = s.owner, s.id
			ctx := fieldops.NewContext(context.Background(), a)
			c, err := e.customers.CreateCustomer(ctx, fieldops.CustomerUpdate{Name: ptr("Customer " + tt.name)})
			if err != nil {
				t.Fatal(err)
			}
			evs, _, err := e.audit.FindAuditEvents(s.ownerCtx, fieldops.AuditFilter{TargetType: "customer", TargetID: fmt.Sprint(c.ID)})
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 1 {
				t.Fatalf("%d events for the customer", len(evs))
			}
			ev := evs[0]
			if ev.ActorUserID != s.owner || ev.ActorLabel != ownerName || ev.Channel != tt.channel || ev.IP != tt.ip ||
				ev.Action != "customer.create" || ev.OrgID != s.id {
				t.Fatalf("event = %d %q %s %q %s, want %d %q %s %q customer.create", ev.ActorUserID, ev.ActorLabel, ev.Channel, ev.IP, ev.Action,
					s.owner, ownerName, tt.channel, tt.ip)
			}
			if ev.Changes["name"] != "Customer "+tt.name {
				t.Fatalf("changes = %v", ev.Changes)
			}
			if len(ev.Hash) != 32 || ev.Seq < 2 || len(ev.PrevHash) != 32 {
				t.Fatalf("chain fields: seq %d, hash %x, prev %x", ev.Seq, ev.Hash, ev.PrevHash)
			}
		})
	}
	t.Run("ZonedIPv6/OK", func(t *testing.T) {
		// A link-local client address carries a zone, which inet cannot
		// store: the change should still be recorded.
		ctx := fieldops.NewContext(context.Background(), fieldops.Actor{UserID: s.owner, OrgID: s.id, Channel: fieldops.ChannelWeb,
			IP: netip.MustParseAddr("fe80::1%eth0")})
		if _, err := e.customers.CreateCustomer(ctx, fieldops.CustomerUpdate{Name: ptr("Zoned")}); err != nil {
			t.Fatalf("appendAudit stores Actor.IP.String(), which keeps an IPv6 zone (fe80::1%%eth0) that Postgres inet rejects, so every change by such a client fails: %v", err)
		}
	})
	if n, err := e.audit.VerifyChain(s.ownerCtx); err != nil || n != 0 {
		t.Fatalf("VerifyChain = %d, %v", n, err)
	}
}

// TestAuditHashInSQL: the entry's hash is computed by Postgres in the
// statement that appends it (appendAudit); VerifyChain recomputes it in Go
// (auditHash). They agree for the first entry (no previous hash), an actor
// with an IPv4 or IPv6 address, text outside ASCII and many entries.
func TestAuditHashInSQL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := mustSmallOrg(t, e, "team")
	a, _ := fieldops.ActorFrom(s.ownerCtx)
	for i, ip := range []string{"", "203.0.113.9", "2001:db8::1", "::ffff:198.51.100.7"} {
		a.IP = netip.Addr{}
		if ip != "" {
			a.IP = netip.MustParseAddr(ip)
		}
		ctx := fieldops.NewContext(s.ownerCtx, a)
		mustCustomer(t, e, ctx, fmt.Sprintf("Zoë's Café № %d — ☕", i))
	}
	n, err := e.audit.VerifyChain(s.ownerCtx)
	if err != nil || n != 0 {
		t.Fatalf("VerifyChain = %d, %v", n, err)
	}
	// Tampering with one entry's changes is still found.
	tamper(t, e, `UPDATE audit_events SET changes = '{"name": "x"}' WHERE org_id = $1 AND seq = 2`, s.id)
	if n, err := e.audit.VerifyChain(s.ownerCtx); err == nil && n == 0 {
		t.Fatal("VerifyChain found nothing after tampering")
	}
}
