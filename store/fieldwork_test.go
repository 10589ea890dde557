package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/store"
)

// fieldEnv is an organisation with the field work service, photo files
// in a temporary directory and the store's clock stopped at now.
type fieldEnv struct {
	*env
	o      *org
	svc    *store.FieldWorkService
	photos *store.PhotoFiles
	now    time.Time
}

func newFieldEnv(tb testing.TB) *fieldEnv {
	tb.Helper()
	e := newEnv(tb)
	v := &fieldEnv{env: e, o: mustOrg(tb, e), photos: &store.PhotoFiles{Dir: tb.TempDir()},
		now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	// Room for a second engineer.
	if _, err := e.orgs.ChangePlan(v.o.ctx[fieldops.RoleOwner], "team", 4); err != nil {
		tb.Fatal(err)
	}
	e.db.Now = func() time.Time { return v.now }
	v.svc = store.NewFieldWorkService(e.db, v.photos)
	return v
}

// mustFieldJob creates a scheduled job (as the owner) with the given
// engineers, the first one primary.
func (v *fieldEnv) mustFieldJob(tb testing.TB, engineers ...int64) *fieldops.Job {
	tb.Helper()
	as := make([]fieldops.Assignment, len(engineers))
	for i, id := range engineers {
		as[i] = fieldops.Assignment{UserID: id, Primary: i == 0}
	}
	return mustJob(tb, v.env, v.o.ctx[fieldops.RoleOwner], v.o.customer.ID, v.o.site.ID, time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), as...)
}

// crewJob is a job with every member who can check in on it, the
// engineer primary.
func (v *fieldEnv) crewJob(tb testing.TB) *fieldops.Job {
	tb.Helper()
	ids := []int64{v.o.user[fieldops.RoleEngineer]}
	for _, r := range fieldops.AllRoles() {
		if r != fieldops.RoleEngineer && fieldops.RoleGrants(r).Scope(fieldops.FlagJobCheckIn) != fieldops.ScopeNone {
			ids = append(ids, v.o.user[r])
		}
	}
	return v.mustFieldJob(tb, ids...)
}

// fieldSnapshot extends snapshot with the tables field work writes.
func fieldSnapshot(tb testing.TB, v *fieldEnv, orgID int64) string {
	tb.Helper()
	var s string
	if err := v.pool.QueryRow(context.Background(), `SELECT concat_ws('/',
		(SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM time_entries t WHERE org_id = $1),
		(SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM photos t WHERE org_id = $1),
		(SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM notes t WHERE org_id = $1))`, orgID).Scan(&s); err != nil {
		tb.Fatal(err)
	}
	return snapshot(tb, v.env, orgID) + "/" + s
}

// site is where the fixture's site is (mustSite).
var site = fieldops.LatLng{Lat: 53.4794, Lng: -2.2453}

// northOf returns the point d metres due north of p.
func northOf(p fieldops.LatLng, d float64) fieldops.LatLng {
	return fieldops.LatLng{Lat: p.Lat + d/6371008.8*180/math.Pi, Lng: p.Lng}
}

// onSite is a good fix at the site, sent just now.
func (v *fieldEnv) onSite() fieldops.LocationInput {
	return fieldops.LocationInput{Lat: site.Lat, Lng: site.Lng, AccuracyM: ptr(8.0), MessageAt: v.now.Add(-5 * time.Second)}
}

// pngBytes is a small real PNG picture; seed makes different pictures.
func pngBytes(tb testing.TB, seed uint8) []byte {
	tb.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	img.Set(1, 2, color.RGBA{R: seed, G: 10, B: 200, A: 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// openEntry inserts an open entry directly, for members the service
// would not let check in.
func (v *fieldEnv) openEntry(tb testing.TB, jobID, userID int64, at time.Time) {
	tb.Helper()
	mustExec(tb, v.env, `INSERT INTO time_entries (org_id, job_id, user_id, check_in_at, source) VALUES ($1, $2, $3, $4, 'web')`,
		v.o.id, jobID, userID, at)
}

// TestFieldWorkByRole runs each method as every role on a job that every
// member who can check in is on; the outcome follows the role's grants.
// A refused call changes nothing.
func TestFieldWorkByRole(t *testing.T) {
	t.Parallel()
	v := newFieldEnv(t)
	o := v.o
	for _, role := range fieldops.AllRoles() {
		t.Run(role.String(), func(t *testing.T) {
			ctx, uid := o.ctx[role], o.user[role]
			for _, tt := range []struct {
				name  string
				flag  fieldops.Flag
				setup func(j *fieldops.Job)
				call  func(j *fieldops.Job) error
			}{
				{"CheckIn", fieldops.FlagJobCheckIn, nil, func(j *fieldops.Job) error {
					te, err := v.svc.CheckIn(ctx, j.ID, v.onSite())
					if err == nil && (te.UserID != uid || te.JobID != j.ID || !te.Open()) {
						t.Errorf("entry = %+v", te)
					}
					return err
				}},
				{"CheckOut", fieldops.FlagJobCheckIn, func(j *fieldops.Job) { v.openEntry(t, j.ID, uid, v.now.Add(-time.Hour)) }, func(j *fieldops.Job) error {
					te, err := v.svc.CheckOut(ctx, j.ID, v.onSite())
					if err == nil && (te.Open() || te.Minutes(v.now) != 60) {
						t.Errorf("entry = %+v", te)
					}
					return err
				}},
				{"AddPhoto", fieldops.FlagPhotoUpload, nil, func(j *fieldops.Job) error {
					_, created, err := v.svc.AddPhoto(ctx, j.ID, fieldops.NewPhoto{Data: pngBytes(t, uint8(role))})
					if err == nil && !created {
						t.Error("created = false for a new photo")
					}
					return err
				}},
				{"AddNote", fieldops.FlagNoteAdd, nil, func(j *fieldops.Job) error {
					_, err := v.svc.AddNote(ctx, j.ID, "Isolator behind the fridge")
					return err
				}},
				{"CompleteJob", fieldops.FlagJobComplete, nil, func(j *fieldops.Job) error {
					got, err := v.svc.CompleteJob(ctx, j.ID)
					if err == nil && got.Status != "completed" {
						t.Errorf("status = %q", got.Status)
					}
					return err
				}},
			} {
				code := want(role, tt.flag)
				t.Run(tt.name+"/"+outcome(code), func(t *testing.T) {
					j := v.crewJob(t)
					if tt.setup != nil {
						tt.setup(j)
					}
					before := fieldSnapshot(t, v, o.id)
					err := tt.call(j)
					wantCode(t, err, code)
					if code != "" && fieldSnapshot(t, v, o.id) != before {
						t.Error("a refused call changed something")
					}
				})
			}
			t.Run("OpenEntries/OK", func(t *testing.T) {
				got, err := v.svc.OpenEntries(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range got {
					if e.UserID != uid || !e.Open() {
						t.Errorf("open entries hold %+v", e)
					}
				}
			})
		})
	}
}

// TestFieldWorkNotFound: another organisation's job, a job the engineer
// is not on and a job that does not exist are not found, for every
// method, and nothing is written.
func TestFieldWorkNotFound(t *testing.T) {
	t.Parallel()
	v := newFieldEnv(t)
	o := v.o
	x := mustOrg(t, v.env)
	notMine := v.mustFieldJob(t, o.user[fieldops.RoleManager])
	for _, tt := range []struct {
		name  string
		ctx   context.Context
		jobID int64
	}{
		{"OtherOrgOwner", x.ctx[fieldops.RoleOwner], o.job.ID},
		{"OtherOrgEngineer", x.ctx[fieldops.RoleEngineer], o.job.ID},
		{"EngineerNotOnJob", o.ctx[fieldops.RoleEngineer], notMine.ID},
		{"NoSuchJob", o.ctx[fieldops.RoleOwner], 1 << 40},
	} {
		for _, m := range []struct {
			name string
			call func(ctx context.Context, jobID int64) error
		}{
			{"CheckIn", func(ctx context.Context, id int64) error { _, err := v.svc.CheckIn(ctx, id, v.onSite()); return err }},
			{"CheckOut", func(ctx context.Context, id int64) error { _, err := v.svc.CheckOut(ctx, id, v.onSite()); return err }},
			{"AddPhoto", func(ctx context.Context, id int64) error {
				_, _, err := v.svc.AddPhoto(ctx, id, fieldops.NewPhoto{Data: pngBytes(t, 1), Caption: "Board"})
				return err
			}},
			{"AddNote", func(ctx context.Context, id int64) error { _, err := v.svc.AddNote(ctx, id, "Note"); return err }},
			{"CompleteJob", func(ctx context.Context, id int64) error { _, err := v.svc.CompleteJob(ctx, id); return err }},
		} {
			t.Run(tt.name+"/"+m.name+"/ErrNotFound", func(t *testing.T) {
				before, beforeX := fieldSnapshot(t, v, o.id), fieldSnapshot(t, v, x.id)
				err := m.call(tt.ctx, tt.jobID)
				wantCode(t, err, fieldops.ENOTFOUND)
				if !strings.HasPrefix(fieldops.ErrorMessage(err), "Job not found") {
					t.Errorf("message = %q", fieldops.ErrorMessage(err))
				}
				if fieldSnapshot(t, v, o.id) != before || fieldSnapshot(t, v, x.id) != beforeX {
					t.Error("a refused call changed something")
				}
				if files, err := os.ReadDir(v.photos.Dir); err != nil || len(files) != 0 {
					t.Errorf("a refused call left %d files in the photo store (%v)", len(files), err)
				}
			})
		}
	}
}

// TestFieldWorkCheckInRefused: what refuses a check-in or a check-out,
// with the message the member gets; nothing changes.
func TestFieldWorkCheckInRefused(t *testing.T) {
	t.Parallel()
	v := newFieldEnv(t)
	o := v.o
	eng, mgr := o.ctx[fieldops.RoleEngineer], o.ctx[fieldops.RoleManager]
	cancelled := v.mustFieldJob(t, o.user[fieldops.RoleEngineer])
	if _, err := v.jobs.CancelJob(o.ctx[fieldops.RoleOwner], cancelled.ID); err != nil {
		t.Fatal(err)
	}
	completed := v.mustFieldJob(t, o.user[fieldops.RoleEngineer])
	if _, err := v.svc.CompleteJob(o.ctx[fieldops.RoleOwner], completed.ID); err != nil {
		t.Fatal(err)
	}
	twice := v.mustFieldJob(t, o.user[fieldops.RoleEngineer])
	if _, err := v.svc.CheckIn(eng, twice.ID, v.onSite()); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		call func() error
		code string
		msg  string // the message starts with it
	}{
		{"ManagerNotOnJob", func() error { _, err := v.svc.CheckIn(mgr, o.job.ID, v.onSite()); return err },
			fieldops.EFORBIDDEN, "Only the job's engineers can check in; assign yourself first."},
		{"OwnerWhoCreatedIt", func() error { _, err := v.svc.CheckIn(o.ctx[fieldops.RoleOwner], o.job.ID, v.onSite()); return err },
			fieldops.EFORBIDDEN, "Only the job's engineers can check in"},
		{"Twice", func() error { _, err := v.svc.CheckIn(eng, twice.ID, v.onSite()); return err },
			fieldops.ECONFLICT, "You are already checked in on this job since 09:00; check out first."},
		{"Cancelled", func() error { _, err := v.svc.CheckIn(eng, cancelled.ID, v.onSite()); return err },
			fieldops.ECONFLICT, "This job is cancelled"},
		{"Completed", func() error { _, err := v.svc.CheckIn(eng, completed.ID, v.onSite()); return err },
			fieldops.ECONFLICT, "This job is completed already"},
		{"BadLocation", func() error {
			_, err := v.svc.CheckIn(eng, o.job.ID, fieldops.LocationInput{Lat: 91, Lng: 0})
			return err
		}, fieldops.EINVALID, "That location is not on the map"},
		{"CheckOutWithoutCheckIn", func() error { _, err := v.svc.CheckOut(eng, o.job.ID, v.onSite()); return err },
			fieldops.ECONFLICT, "You are not checked in on this job; check in first."},
		{"ManagerCheckOutWithoutCheckIn", func() error { _, err := v.svc.CheckOut(mgr, o.job.ID, v.onSite()); return err },
			fieldops.ECONFLICT, "You are not checked in on this job; check in first."},
		{"CheckOutBadLocation", func() error {
			_, err := v.svc.CheckOut(eng, twice.ID, fieldops.LocationInput{Lat: 0, Lng: math.NaN()})
			return err
		}, fieldops.EINVALID, "That location is not on the map"},
	} {
		t.Run(tt.name+"/"+outcome(tt.code), func(t *testing.T) {
			before := fieldSnapshot(t, v, o.id)
			err := tt.call()
			wantCode(t, err, tt.code)
			if msg := fieldops.ErrorMessage(err); !strings.HasPrefix(msg, tt.msg) {
				t.Errorf("message = %q, want %q…", msg, tt.msg)
			}
			if fieldSnapshot(t, v, o.id) != before {
				t.Error("a refused call changed something")
			}
		})
	}
	t.Run("TwiceOnAnotherDay/ErrConflict", func(t *testing.T) {
		v.now = v.now.Add(26 * time.Hour)
		t.Cleanup(func() { v.now = v.now.Add(-26 * time.Hour) })
		_, err := v.svc.CheckIn(eng, twice.ID, v.onSite())
		wantCode(t, err, fieldops.ECONFLICT)
		if msg := fieldops.ErrorMessage(err); msg != "You are already checked in on this job since 09:00 on Tue 1 Dec; check out first." {
			t.Errorf("message = %q", msg)
		}
	})
	t.Run("CheckOutAfterCancel/OK", func(t *testing.T) {
		// Checked in, then the job is cancelled: the engineer can still
		// leave.
		j := v.mustFieldJob(t, o.user[fieldops.RoleEngineer])
		if _, err := v.svc.CheckIn(eng, j.ID, v.onSite()); err != nil {
			t.Fatal(err)
		}
		if _, err := v.jobs.CancelJob(o.ctx[fieldops.RoleOwner], j.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := v.svc.CheckOut(eng, j.ID, v.onSite()); err != nil {
			t.Fatal(err)
		}
	})
}

// entryRow reads what the table holds of an entry's evidence.
type entryRow struct {
	inDist, inAcc, outDist, outAcc *float64
	inFlags, outFlags              []string
	inMsg, outMsg                  *time.Time
	source                         string
}

func readEntryRow(tb testing.TB, v *fieldEnv, id int64) entryRow {
	tb.Helper()
	var r entryRow
	if err := v.pool.QueryRow(context.Background(), `SELECT check_in_distance_m, check_in_accuracy_m, check_out_distance_m, check_out_accuracy_m,
			check_in_flags, check_out_flags, check_in_message_at, check_out_message_at, source
		FROM time_entries WHERE id = $1`, id).Scan(&r.inDist, &r.inAcc, &r.outDist, &r.outAcc, &r.inFlags, &r.outFlags,
		&r.inMsg, &r.outMsg, &r.source); err != nil {
		tb.Fatal(err)
	}
	return r
}

// alert is one alert.location_flagged row.
type alert struct {
	user    int64
	dedupe  string
	payload map[string]any
}

func locationAlerts(tb testing.TB, v *fieldEnv, entryID int64, end string) []alert {
	tb.Helper()
	rows, err := v.pool.Query(context.Background(), `SELECT user_id, dedupe_key, payload FROM notifications
		WHERE org_id = $1 AND kind = 'alert.location_flagged' AND dedupe_key LIKE $2 ORDER BY user_id`,
		v.o.id, fmt.Sprintf("loc:%d:%s:%%", entryID, end))
	if err != nil {
		tb.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (alert, error) {
		var a alert
		var raw []byte
		if err := row.Scan(&a.user, &a.dedupe, &raw); err != nil {
			return a, err
		}
		return a, json.Unmarshal(raw, &a.payload)
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestFieldWorkEvidence: each kind of location is stored exactly, with
// its distance and flags, at check-in and at check-out; flagged evidence,
// and only that, alerts the members who receive alerts (not the
// engineer).
func TestFieldWorkEvidence(t *testing.T) {
	t.Parallel()
	v := newFieldEnv(t)
	o := v.o
	engID := o.user[fieldops.RoleEngineer]
	recipients := holdersOf(o, fieldops.FlagAlertsReceive, fieldops.RoleEngineer)
	if len(recipients) == 0 {
		t.Fatal("no role receives alerts")
	}
	tgCtx := fieldops.NewContext(context.Background(), fieldops.Actor{UserID: engID, OrgID: o.id, Channel: fieldops.ChannelTelegram})
	for _, tt := range []struct {
		name     string
		ctx      context.Context
		loc      func() fieldops.LocationInput
		distance float64 // -1 none
		flags    []string
		source   string
	}{
		{"OnSite", o.ctx[fieldops.RoleEngineer], v.onSite, 0, []string{}, "web"},
		{"Telegram", tgCtx, v.onSite, 0, []string{}, "telegram"},
		{"Near", tgCtx, func() fieldops.LocationInput {
			l := v.onSite()
			p := northOf(site, 200)
			l.Lat, l.Lng = p.Lat, p.Lng
			return l
		}, 200, []string{}, "telegram"},
		{"OffSite", tgCtx, func() fieldops.LocationInput {
			l := v.onSite()
			p := northOf(site, 640)
			l.Lat, l.Lng = p.Lat, p.Lng
			return l
		}, 640, []string{"off_site"}, "telegram"},
		{"Forwarded", tgCtx, func() fieldops.LocationInput { l := v.onSite(); l.Forwarded = true; return l }, 0, []string{"forwarded"}, "telegram"},
		{"Stale", tgCtx, func() fieldops.LocationInput { l := v.onSite(); l.MessageAt = v.now.Add(-6 * time.Minute); return l },
			0, []string{"stale"}, "telegram"},
		{"PoorAccuracy", tgCtx, func() fieldops.LocationInput { l := v.onSite(); l.AccuracyM = ptr(350.0); return l },
			0, []string{"poor_accuracy"}, "telegram"},
		{"Venue", tgCtx, func() fieldops.LocationInput { l := v.onSite(); l.Venue = true; return l }, 0, []string{"venue"}, "telegram"},
		{"LiveIsNotAWarning", tgCtx, func() fieldops.LocationInput {
			l := v.onSite()
			l.Live, l.MessageAt = true, v.now.Add(-time.Hour)
			return l
		}, 0, []string{"live"}, "telegram"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			j := v.mustFieldJob(t, engID)
			loc := tt.loc()
			ev := fieldops.LocationEvidence{Flags: tt.flags}
			in, err := v.svc.CheckIn(tt.ctx, j.ID, loc)
			if err != nil {
				t.Fatal(err)
			}
			check := func(t *testing.T, id int64, end string, got fieldops.LocationEvidence, dist, acc *float64, flags []string, msg *time.Time) {
				t.Helper()
				if got.DistanceM == nil || math.Abs(*got.DistanceM-tt.distance) > 0.01 || dist == nil || *dist != *got.DistanceM {
					t.Errorf("%s distance = %v (row %v), want %v", end, got.DistanceM, dist, tt.distance)
				}
				if got.AccuracyM == nil || *got.AccuracyM != *loc.AccuracyM || acc == nil || *acc != *loc.AccuracyM {
					t.Errorf("%s accuracy = %v (row %v), want %v", end, got.AccuracyM, acc, *loc.AccuracyM)
				}
				if *got.Lat != loc.Lat || *got.Lng != loc.Lng {
					t.Errorf("%s point = %v,%v", end, *got.Lat, *got.Lng)
				}
				if !slices.Equal(got.Flags, tt.flags) || !slices.Equal(flags, tt.flags) {
					t.Errorf("%s flags = %v (row %v), want %v", end, got.Flags, flags, tt.flags)
				}
				if got.MessageAt == nil || !got.MessageAt.Equal(loc.MessageAt) || msg == nil || !msg.Equal(loc.MessageAt) {
					t.Errorf("%s message at = %v (row %v), want %v", end, got.MessageAt, msg, loc.MessageAt)
				}
				alerts := locationAlerts(t, v, id, end)
				if len(ev.Warnings()) == 0 {
					if len(alerts) != 0 {
						t.Errorf("%s alerts = %v, want none for clean evidence", end, alerts)
					}
					return
				}
				var users []int64
				for _, a := range alerts {
					users = append(users, a.user)
					p := a.payload
					event := map[string]string{"in": "check_in", "out": "check_out"}[end]
					if p["event"] != event || p["job_id"] != float64(j.ID) || p["title"] != j.Title || p["site"] != j.SiteAddress ||
						p["engineer"] == "" || p["distance_m"] != *got.DistanceM || p["accuracy_m"] != *got.AccuracyM ||
						fmt.Sprint(p["flags"]) != fmt.Sprint(ev.Warnings()) {
						t.Errorf("%s alert payload = %v", end, p)
					}
					if !strings.HasPrefix(a.dedupe, fmt.Sprintf("loc:%d:%s", id, end)) {
						t.Errorf("dedupe key = %q", a.dedupe)
					}
				}
				if !sameIDs(users, recipients) {
					t.Errorf("%s alerted %v, want %v (alerts.receive, not the engineer)", end, users, recipients)
				}
			}
			row := readEntryRow(t, v, in.ID)
			check(t, in.ID, "in", in.In, row.inDist, row.inAcc, row.inFlags, row.inMsg)
			if row.source != tt.source || in.Source != tt.source {
				t.Errorf("source = %q (row %q), want %q", in.Source, row.source, tt.source)
			}
			if !in.CheckInAt.Equal(v.now) || !in.Open() || in.UserID != engID || in.UserName == "" {
				t.Errorf("entry = %+v", in)
			}

			v.now = v.now.Add(90 * time.Minute)
			t.Cleanup(func() { v.now = v.now.Add(-90 * time.Minute) })
			loc = tt.loc()
			out, err := v.svc.CheckOut(tt.ctx, j.ID, loc)
			if err != nil {
				t.Fatal(err)
			}
			row = readEntryRow(t, v, out.ID)
			check(t, out.ID, "out", out.Out, row.outDist, row.outAcc, row.outFlags, row.outMsg)
			if out.ID != in.ID || out.CheckOutAt == nil || !out.CheckOutAt.Equal(v.now) || out.Minutes(v.now) != 90 {
				t.Errorf("closed entry = %+v", out)
			}
		})
	}
}

// TestFieldWorkCheckInRecords: a check-in starts a scheduled job and is
// audited with its evidence; a check-out is audited with its minutes; a
// check-out at the very time of the check-in still ends after it.
func TestFieldWorkCheckInRecords(t *testing.T) {
	t.Parallel()
	v := newFieldEnv(t)
	o := v.o
	eng, engID := o.ctx[fieldops.RoleEngineer], o.user[fieldops.RoleEngineer]
	j := v.mustFieldJob(t, engID)
	in, err := v.svc.CheckIn(eng, j.ID, v.onSite())
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.jobs.FindJobByID(eng, j.ID)
	if err != nil || got.Status != "in_progress" {
		t.Fatalf("job = %+v, %v; want in progress", got, err)
	}
	events, _, err := v.audit.FindAuditEvents(o.ctx[fieldops.RoleOwner], fieldops.AuditFilter{Action: "job.check_in", Limit: 10})
	if err != nil || len(events) != 1 {
		t.Fatalf("check-in audit = %v, %v", events, err)
	}
	ch := events[0].Changes
	if events[0].ActorUserID != engID || events[0].TargetID != fmt.Sprint(j.ID) || ch["entry_id"] != float64(in.ID) ||
		ch["distance_m"] != 0.0 || ch["accuracy_m"] != 8.0 || fmt.Sprint(ch["flags"]) != "[]" {
		t.Errorf("check-in audit = %+v", events[0])
	}
	if _, ok := ch["status"]; !ok {
		t.Errorf("check-in audit does not record the job starting: %v", ch)
	}
	// Out at the same instant: one microsecond after.
	out, err := v.svc.CheckOut(eng, j.ID, v.onSite())
	if err != nil {
		t.Fatal(err)
	}
	if !out.CheckOutAt.Equal(in.CheckInAt.Add(time.Microsecond)) {
		t.Errorf("check out at %v, check in at %v", out.CheckOutAt, in.CheckInAt)
	}
	if action, actor, _ := lastAudit(t, v.env, o.id); action != "job.check_out" || actor != engID {
		t.Errorf("last audit = %s by %d", action, actor)
	}
	// In again later: the job stays in progress, a second entry opens.
	v.now = v.now.Add(time.Hour)
	t.Cleanup(func() { v.now = v.now.Add(-time.Hour) })
	again, err := v.svc.CheckIn(eng, j.ID, v.onSite())
	if err != nil || again.ID == in.ID {
		t.Fatalf("second check-in = %+v, %v", again, err)
	}
	events, _, _ = v.audit.FindAuditEvents(o.ctx[fieldops.RoleOwner], fieldops.AuditFilter{Action: "job.check_in", Limit: 1})
	if _, ok := events[0].Changes["status"]; ok {
		t.Errorf("second check-in audit records a status change: %v", events[0].Changes)
	}
	v.now = v.now.Add(45 * time.Minute)
	t.Cleanup(func() { v.now = v.now.Add(-45 * time.Minute) })
	if _, err := v.svc.CheckOut(eng, j.ID, v.onSite()); err != nil {
		t.Fatal(err)
	}
	events, _, _ = v.audit.FindAuditEvents(o.ctx[fieldops.RoleOwner], fieldops.AuditFilter{Action: "job.check_out", Limit: 1})
	if events[0].Changes["minutes"] != 45.0 || events[0].Changes["entry_id"] != float64(again.ID) {
		t.Errorf("check-out audit = %v", events[0].Changes)
	}
}

// TestFieldWorkTwoEngineers: each engineer's intervals are their own, and
// the job's time is the sum.
func TestFieldWorkTwoEngineers(t *testing.T) {
	t.Parallel()
	v := newFieldEnv(t)
	o := v.o
	second := mustMember(t, v.env, o.ctx[fieldops.RoleOwner], fieldops.RoleEngineer)
	secondCtx := actorCtx(o.id, second.UserID)
	eng := o.ctx[fieldops.RoleEngineer]
	j := v.mustFieldJob(t, o.user[fieldops.RoleEngineer], second.UserID)
	for _, ctx := range []context.Context{eng, secondCtx} {
		if _, err := v.svc.CheckIn(ctx, j.ID, v.onSite()); err != nil {
			t.Fatal(err)
		}
	}
	v.now = v.now.Add(time.Hour)
	if _, err := v.svc.CheckOut(eng, j.ID, v.onSite()); err != nil {
		t.Fatal(err)
	}
	v.now = v.now.Add(30 * time.Minute)
	if _, err := v.svc.CheckOut(secondCtx, j.ID, v.onSite()); err != nil {
		t.Fatal(err)
	}
	ev, err := store.NewJobEvidenceService(v.db).FindJobEvidence(o.ctx[fieldops.RoleManager], j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Time.Entries) != 2 || len(ev.Time.PerEngineer) != 2 || ev.Time.Minutes != 60+90 {
		t.Fatalf("time = %d entries, %d engineers, %d min; want 2, 2, 150", len(ev.Time.Entries), len(ev.Time.PerEngineer), ev.Time.Minutes)
	}
	per := map[int64]int{}
	for _, p := range ev.Time.PerEngineer {
		per[p.UserID] = p.Minutes
	}
	if per[o.user[fieldops.RoleEngineer]] != 60 || per[second.UserID] != 90 {
		t.Errorf("per engineer = %v", per)
	}
}

// TestFieldWorkConcurrentCheckIn: ten check-ins at once make one entry;
// the others are told they are checked in already.
func TestFieldWorkConcurrentCheckIn(t *testing.T) {
	t.Parallel()
	v := newFieldEnv(t)
	o := v.o
	eng := o.ctx[fieldops.RoleEngineer]
	j := v.mustFieldJob(t, o.user[fieldops.RoleEngineer])
	loc := v.onSite()
	errs := make([]error, 10)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { _, errs[i] = v.svc.CheckIn(eng, j.ID, loc) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch fieldops.ErrorCode(err) {
		case "":
			ok++
		case fieldops.ECONFLICT:
			if !strings.HasPrefix(fieldops.ErrorMessage(err), "You are already checked in on this job") {
				t.Errorf("message = %q", fieldops.ErrorMessage(err))
			}
		default:
			t.Errorf("check-in: %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d check-ins succeeded, want 1", ok)
	}
	if n := count(t, v.env, `SELECT count(*) FROM time_entries WHERE job_id = $1`, j.ID); n != 1 {
		t.Errorf("%d entries, want 1", n)
	}
	if n := count(t, v.env, `SELECT count(*) FROM audit_events WHERE org_id = $1 AND action = 'job.check_in'`, o.id); n != 1 {
		t.Errorf("%d check-in audit entries, want 1", n)
	}
}

// TestFieldWorkOpenEntries: where the actor is checked in, newest first;
// nobody else's entries.
func TestFieldWorkOpenEntries(t *testing.T) {
	t.Parallel()
	v := newFieldEnv(t)
	o := v.o
	eng, engID := o.ctx[fieldops.RoleEngineer], o.user[fieldops.RoleEngineer]
	a := v.mustFieldJob(t, engID, o.user[fieldops.RoleManager])
	b := v.mustFieldJob(t, engID)
	c := v.mustFieldJob(t, engID)
	if _, err := v.svc.CheckIn(eng, a.ID, v.onSite()); err != nil {
		t.Fatal(err)
	}
	if _, err := v.svc.CheckIn(o.ctx[fieldops.RoleManager], a.ID, v.onSite()); err != nil {
		t.Fatal(err)
	}
	v.now = v.now.Add(10 * time.Minute)
	if _, err := v.svc.CheckIn(eng, b.ID, v.onSite()); err != nil {
		t.Fatal(err)
	}
	v.now = v.now.Add(10 * time.Minute)
	if _, err := v.svc.CheckIn(eng, c.ID, v.onSite()); err != nil {
		t.Fatal(err)
	}
	if _, err := v.svc.CheckOut(eng, c.ID, v.onSite()); err != nil {
		t.Fatal(err)
	}
	got, err := v.svc.OpenEntries(eng)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].JobID != b.ID || got[1].JobID != a.ID || got[0].UserID != engID || !got[0].Open() {
		t.Fatalf("open entries = %+v, want jobs %d then %d", got, b.ID, a.ID)
	}
	none, err := v.svc.OpenEntries(o.ctx[fieldops.RoleAccountant])
	if err != nil || len(none) != 0 {
		t.Fatalf("accountant's open entries = %v, %v", none, err)
	}
	x := mustOrg(t, v.env)
	if got, err := v.svc.OpenEntries(x.ctx[fieldops.RoleEngineer]); err != nil || len(got) != 0 {
		t.Fatalf("other organisation's engineer sees %v, %v", got, err)
	}
}

// TestFieldWorkAddPhoto: a photo is stored on disk under its SHA-256 and
// recorded once per job; its caption becomes a note; what is not a
// picture is refused and nothing is written.
func TestFieldWorkAddPhoto(t *testing.T) {
	t.Parallel()
	v := newFieldEnv(t)
	o := v.o
	eng, engID := o.ctx[fieldops.RoleEngineer], o.user[fieldops.RoleEngineer]
	j := v.mustFieldJob(t, engID)
	data := pngBytes(t, 7)
	sum := sha256.Sum256(data)
	taken := v.now.Add(-time.Minute)

	first, created, err := v.svc.AddPhoto(eng, j.ID, fieldops.NewPhoto{Data: data, Caption: "  Consumer unit, cover off  ",
		TelegramFileID: "AgACAgQAAx0", TakenAt: &taken})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("Stored", func(t *testing.T) {
		if !created || first.SHA256 != hex.EncodeToString(sum[:]) || first.SizeBytes != int64(len(data)) || first.JobID != j.ID ||
			first.UserID != engID || first.Caption != "Consumer unit, cover off" || first.TakenAt == nil || !first.TakenAt.Equal(taken) {
			t.Fatalf("photo = %+v (created %v)", first, created)
		}
		var key, ct, fileID string
		if err := v.pool.QueryRow(context.Background(), `SELECT storage_key, content_type, telegram_file_id FROM photos WHERE id = $1`,
			first.ID).Scan(&key, &ct, &fileID); err != nil {
			t.Fatal(err)
		}
		if ct != "image/png" || fileID != "AgACAgQAAx0" {
			t.Errorf("content type %q, file id %q", ct, fileID)
		}
		rc, err := v.photos.Open(key)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		onDisk, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		if got := sha256.Sum256(onDisk); got != sum {
			t.Errorf("file on disk has SHA-256 %x, want %x", got, sum)
		}
		ev, err := store.NewJobEvidenceService(v.db).FindJobEvidence(eng, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ev.Notes) != 1 || ev.Notes[0].PhotoID != first.ID || ev.Notes[0].Body != "Consumer unit, cover off" {
			t.Errorf("notes = %+v, want the caption", ev.Notes)
		}
		if action, actor, _ := lastAudit(t, v.env, o.id); action != "photo.upload" || actor != engID {
			t.Errorf("last audit = %s by %d", action, actor)
		}
	})
	t.Run("SameAgain", func(t *testing.T) {
		before := fieldSnapshot(t, v, o.id)
		again, created, err := v.svc.AddPhoto(eng, j.ID, fieldops.NewPhoto{Data: data, Caption: "Consumer unit, cover off"})
		if err != nil {
			t.Fatal(err)
		}
		if created || again.ID != first.ID {
			t.Fatalf("again = %+v (created %v), want photo %d", again, created, first.ID)
		}
		if fieldSnapshot(t, v, o.id) != before {
			t.Error("sending the same photo and caption again changed something")
		}
	})
	t.Run("SameWithNewCaption", func(t *testing.T) {
		again, created, err := v.svc.AddPhoto(o.ctx[fieldops.RoleManager], j.ID, fieldops.NewPhoto{Data: data, Caption: "Needs a new board"})
		if err != nil || created || again.ID != first.ID {
			t.Fatalf("again = %+v (created %v), %v", again, created, err)
		}
		if n := count(t, v.env, `SELECT count(*) FROM notes WHERE photo_id = $1`, first.ID); n != 2 {
			t.Errorf("%d notes on the photo, want 2", n)
		}
	})
	t.Run("DeletedComesBack", func(t *testing.T) {
		mustExec(t, v.env, `UPDATE photos SET deleted_at = now(), deleted_by = $2 WHERE id = $1`, first.ID, engID)
		again, created, err := v.svc.AddPhoto(eng, j.ID, fieldops.NewPhoto{Data: data})
		if err != nil || created || again.ID != first.ID {
			t.Fatalf("again = %+v (created %v), %v", again, created, err)
		}
		if n := count(t, v.env, `SELECT count(*) FROM photos WHERE id = $1 AND deleted_at IS NULL AND deleted_by IS NULL`, first.ID); n != 1 {
			t.Error("the photo is still deleted")
		}
	})
	t.Run("OtherJobOwnRow", func(t *testing.T) {
		k := v.mustFieldJob(t, engID)
		p, created, err := v.svc.AddPhoto(eng, k.ID, fieldops.NewPhoto{Data: data})
		if err != nil || !created || p.ID == first.ID || p.JobID != k.ID {
			t.Fatalf("photo on another job = %+v (created %v), %v", p, created, err)
		}
	})
	if n := count(t, v.env, `SELECT count(*) FROM photos WHERE job_id = $1`, j.ID); n != 1 {
		t.Errorf("%d photo rows on the job, want 1", n)
	}
	for _, tt := range []struct {
		name  string
		p     fieldops.NewPhoto
		field string
		msg   string
	}{
		{"Text", fieldops.NewPhoto{Data: []byte("hello, this is not a picture")}, "photo", "That file is not a photo we can keep"},
		{"PDF", fieldops.NewPhoto{Data: []byte("%PDF-1.7\n")}, "photo", "That file is not a photo we can keep"},
		// The declared type is not believed: an SVG can carry a script.
		{"SVGDeclaredImage", fieldops.NewPhoto{Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`),
			ContentType: "image/svg+xml"}, "photo", "That file is not a photo we can keep"},
		{"TextDeclaredJPEG", fieldops.NewPhoto{Data: []byte("not a jpeg at all"), ContentType: "image/jpeg"}, "photo", "That file is not a photo we can keep"},
		{"Empty", fieldops.NewPhoto{}, "photo", "The photo arrived empty"},
		{"TooLarge", fieldops.NewPhoto{Data: make([]byte, fieldops.MaxPhotoBytes+1)}, "photo", "That photo is larger than 20 MB"},
		{"LongCaption", fieldops.NewPhoto{Data: pngBytes(t, 99), Caption: strings.Repeat("é", 1001)}, "caption", "A caption can be up to 1000 characters"},
	} {
		t.Run(tt.name+"/ErrInvalid", func(t *testing.T) {
			before := fieldSnapshot(t, v, o.id)
			_, _, err := v.svc.AddPhoto(eng, j.ID, tt.p)
			wantField(t, err, fieldops.EINVALID, tt.field)
			if !strings.HasPrefix(fieldops.ErrorMessage(err), tt.msg) {
				t.Errorf("message = %q", fieldops.ErrorMessage(err))
			}
			if fieldSnapshot(t, v, o.id) != before {
				t.Error("a refused photo changed something")
			}
		})
	}
	t.Run("DeclaredJPEG/OK", func(t *testing.T) {
		// HEIC, which http.DetectContentType does not know, is recognised
		// from its ftyp box (the declared type is not what decides).
		p, created, err := v.svc.AddPhoto(eng, j.ID, fieldops.NewPhoto{Data: []byte("....ftypheic"), ContentType: "image/heic"})
		if err != nil || !created {
			t.Fatalf("photo = %+v (created %v), %v", p, created, err)
		}
	})
}

// TestFieldWorkAddNote: a note is trimmed, 1 to 2000 characters, and
// audited.
func TestFieldWorkAddNote(t *testing.T) {
	t.Parallel()
	v := newFieldEnv(t)
	o := v.o
	eng, engID := o.ctx[fieldops.RoleEngineer], o.user[fieldops.RoleEngineer]
	n, err := v.svc.AddNote(eng, o.job.ID, "  Key with the neighbour at 14 \n")
	if err != nil {
		t.Fatal(err)
	}
	if n.Body != "Key with the neighbour at 14" || n.JobID != o.job.ID || n.UserID != engID || n.UserName == "" || n.PhotoID != 0 || n.ID == 0 {
		t.Errorf("note = %+v", n)
	}
	if action, actor, _ := lastAudit(t, v.env, o.id); action != "note.add" || actor != engID {
		t.Errorf("last audit = %s by %d", action, actor)
	}
	if _, err := v.svc.AddNote(eng, o.job.ID, strings.Repeat("ö", 2000)); err != nil {
		t.Errorf("2000 characters: %v", err)
	}
	for _, tt := range []struct{ name, body string }{
		{"Empty", ""},
		{"Blank", " \t\n "},
		{"TooLong", strings.Repeat("a", 2001)},
	} {
		t.Run(tt.name+"/ErrInvalid", func(t *testing.T) {
			before := fieldSnapshot(t, v, o.id)
			_, err := v.svc.AddNote(eng, o.job.ID, tt.body)
			wantField(t, err, fieldops.EINVALID, "body")
			if fieldSnapshot(t, v, o.id) != before {
				t.Error("a refused note changed something")
			}
		})
	}
}

// TestFieldWorkCompleteJob: refused while anyone is checked in, when
// cancelled and when completed already; otherwise completed and audited.
func TestFieldWorkCompleteJob(t *testing.T) {
	t.Parallel()
	v := newFieldEnv(t)
	o := v.o
	eng, mgr := o.ctx[fieldops.RoleEngineer], o.ctx[fieldops.RoleManager]
	second := mustMember(t, v.env, o.ctx[fieldops.RoleOwner], fieldops.RoleEngineer)
	secondCtx := actorCtx(o.id, second.UserID)
	j := v.mustFieldJob(t, o.user[fieldops.RoleEngineer], second.UserID)
	if _, err := v.svc.CheckIn(eng, j.ID, v.onSite()); err != nil {
		t.Fatal(err)
	}
	var engName string
	if err := v.pool.QueryRow(context.Background(), `SELECT name FROM users WHERE id = $1`, o.user[fieldops.RoleEngineer]).Scan(&engName); err != nil {
		t.Fatal(err)
	}
	refused := func(t *testing.T, ctx context.Context, jobID int64, msg string) {
		t.Helper()
		before := fieldSnapshot(t, v, o.id)
		_, err := v.svc.CompleteJob(ctx, jobID)
		wantCode(t, err, fieldops.ECONFLICT)
		if got := fieldops.ErrorMessage(err); got != msg {
			t.Errorf("message = %q, want %q", got, msg)
		}
		if fieldSnapshot(t, v, o.id) != before {
			t.Error("a refused completion changed something")
		}
	}
	t.Run("OtherCheckedIn/ErrConflict", func(t *testing.T) {
		refused(t, mgr, j.ID, engName+" is still checked in; they must check out first.")
	})
	t.Run("SelfCheckedIn/ErrConflict", func(t *testing.T) {
		refused(t, eng, j.ID, "You are still checked in on this job; check out first.")
	})
	t.Run("TwoCheckedIn/ErrConflict", func(t *testing.T) {
		if _, err := v.svc.CheckIn(secondCtx, j.ID, v.onSite()); err != nil {
			t.Fatal(err)
		}
		names := []string{engName, second.Name}
		slices.Sort(names)
		refused(t, mgr, j.ID, names[0]+" and "+names[1]+" are still checked in; they must check out first.")
		if _, err := v.svc.CheckOut(secondCtx, j.ID, v.onSite()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("OK", func(t *testing.T) {
		v.now = v.now.Add(2 * time.Hour)
		if _, err := v.svc.CheckOut(eng, j.ID, v.onSite()); err != nil {
			t.Fatal(err)
		}
		got, err := v.svc.CompleteJob(eng, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != "completed" || got.ID != j.ID {
			t.Errorf("job = %+v", got)
		}
		if n := count(t, v.env, `SELECT count(*) FROM jobs WHERE id = $1 AND completed_at = $2`, j.ID, v.now); n != 1 {
			t.Error("completed_at is not the time of completion")
		}
		if action, actor, _ := lastAudit(t, v.env, o.id); action != "job.complete" || actor != o.user[fieldops.RoleEngineer] {
			t.Errorf("last audit = %s by %d", action, actor)
		}
	})
	t.Run("Again/ErrConflict", func(t *testing.T) {
		refused(t, mgr, j.ID, "This job was completed already on 1 Dec 2026; there is nothing more to do.")
	})
	t.Run("Cancelled/ErrConflict", func(t *testing.T) {
		k := v.mustFieldJob(t, o.user[fieldops.RoleEngineer])
		if _, err := v.jobs.CancelJob(o.ctx[fieldops.RoleOwner], k.ID); err != nil {
			t.Fatal(err)
		}
		refused(t, mgr, k.ID, "This job is cancelled, so it cannot be completed; create a new job for any work that was done.")
	})
}

// TestFieldWorkUnitOfWork: inside a unit of work a check-in commits or
// rolls back with it, its audit entry and alert included.
func TestFieldWorkUnitOfWork(t *testing.T) {
	t.Parallel()
	v := newFieldEnv(t)
	o := v.o
	eng := o.ctx[fieldops.RoleEngineer]
	j := v.mustFieldJob(t, o.user[fieldops.RoleEngineer])
	offSite := v.onSite()
	p := northOf(site, 2000)
	offSite.Lat, offSite.Lng = p.Lat, p.Lng

	t.Run("RolledBack", func(t *testing.T) {
		before := fieldSnapshot(t, v, o.id)
		audits := auditCount(t, v.env, o.id)
		boom := errors.New("boom")
		err := v.db.WithinTx(eng, func(ctx context.Context, _ pgx.Tx) error {
			te, err := v.svc.CheckIn(ctx, j.ID, offSite)
			if err != nil {
				return err
			}
			if len(te.In.Warnings()) == 0 {
				t.Error("the check-in was not flagged off site")
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("WithinTx = %v, want boom", err)
		}
		if n := count(t, v.env, `SELECT count(*) FROM time_entries WHERE job_id = $1`, j.ID); n != 0 {
			t.Errorf("%d entries after a rollback", n)
		}
		if auditCount(t, v.env, o.id) != audits {
			t.Error("an audit entry survived the rollback")
		}
		if n := count(t, v.env, `SELECT count(*) FROM notifications WHERE org_id = $1 AND kind = 'alert.location_flagged'`, o.id); n != 0 {
			t.Errorf("%d alerts survived the rollback", n)
		}
		if fieldSnapshot(t, v, o.id) != before {
			t.Error("the rolled-back unit of work changed something")
		}
	})
	t.Run("RefusalUndoesOnlyItself", func(t *testing.T) {
		err := v.db.WithinTx(eng, func(ctx context.Context, _ pgx.Tx) error {
			if _, err := v.svc.CheckIn(ctx, j.ID, offSite); err != nil {
				return err
			}
			_, err := v.svc.CheckIn(ctx, j.ID, offSite)
			wantCode(t, err, fieldops.ECONFLICT)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := count(t, v.env, `SELECT count(*) FROM time_entries WHERE job_id = $1 AND check_out_at IS NULL`, j.ID); n != 1 {
			t.Errorf("%d open entries, want 1", n)
		}
		if n := count(t, v.env, `SELECT count(*) FROM notifications WHERE org_id = $1 AND kind = 'alert.location_flagged'`, o.id); n !=
			len(holdersOf(o, fieldops.FlagAlertsReceive, fieldops.RoleEngineer)) {
			t.Errorf("%d alerts, want one per recipient", n)
		}
	})
}

func TestSniffImage(t *testing.T) {
	heic := append([]byte{0, 0, 0, 24}, []byte("ftypheic\x00\x00\x00\x00mif1heic")...)
	for _, tt := range []struct {
		name string
		data []byte
		want string
	}{
		{"PNG", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), "image/png"},
		{"JPEG", []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00"), "image/jpeg"},
		{"WebP", []byte("RIFF\x00\x00\x00\x00WEBPVP8 "), "image/webp"},
		{"HEIC", heic, "image/heic"},
		{"HEIF", append([]byte{0, 0, 0, 24}, []byte("ftypmif1\x00\x00\x00\x00")...), "image/heif"},
		{"MP4", append([]byte{0, 0, 0, 24}, []byte("ftypisom\x00\x00\x00\x00")...), ""},
		{"SVG", []byte(`<svg xmlns="http://www.w3.org/2000/svg"></svg>`), ""},
		{"Short", []byte("ab"), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := store.SniffImage(tt.data); got != tt.want {
				t.Errorf("SniffImage = %q, want %q", got, tt.want)
			}
		})
	}
}
