package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/store"
)

// evidenceEnv is an organisation whose job has time entries of two
// engineers (one still on site), a photo with a caption and a note, and
// the store's clock stopped at now.
type evidenceEnv struct {
	*env
	o     *org
	svc   *store.JobEvidenceService
	now   time.Time
	other *fieldops.Job // a job the engineer is not on
	photo int64
}

func newEvidenceEnv(tb testing.TB) *evidenceEnv {
	tb.Helper()
	e := newEnv(tb)
	o := mustOrg(tb, e)
	v := &evidenceEnv{env: e, o: o, svc: store.NewJobEvidenceService(e.db), now: time.Date(2026, 12, 1, 13, 15, 0, 0, time.UTC)}
	e.db.Now = func() time.Time { return v.now }
	v.other = mustJob(tb, e, o.ctx[fieldops.RoleOwner], o.customer.ID, o.site.ID, time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC))
	eng, mgr := o.user[fieldops.RoleEngineer], o.user[fieldops.RoleManager]
	// The engineer: 09:00–11:30 (150 min), checked out off site; back at
	// 12:00 and still there (75 min at 13:15). The manager: 09:30–10:00
	// (30 min), a forwarded location since removed by retention.
	mustExec(tb, e, `INSERT INTO time_entries (org_id, job_id, user_id, check_in_at, check_out_at,
			check_in_lat, check_in_lng, check_in_accuracy_m, check_in_distance_m, check_in_message_at, check_in_flags,
			check_out_lat, check_out_lng, check_out_accuracy_m, check_out_distance_m, check_out_message_at, check_out_flags, source)
		VALUES ($1, $2, $3, '2026-12-01 09:00Z', '2026-12-01 11:30Z', 53.4795, -2.2452, 8, 12.5, '2026-12-01 09:00Z', '{live}',
			53.4850, -2.2452, 15, 640, '2026-12-01 11:30Z', '{off_site}', 'telegram')`, o.id, o.job.ID, eng)
	mustExec(tb, e, `INSERT INTO time_entries (org_id, job_id, user_id, check_in_at, check_in_lat, check_in_lng, check_in_accuracy_m,
			check_in_distance_m, check_in_flags, source)
		VALUES ($1, $2, $3, '2026-12-01 12:00Z', 53.4794, -2.2453, 5, 3, '{}', 'telegram')`, o.id, o.job.ID, eng)
	mustExec(tb, e, `INSERT INTO time_entries (org_id, job_id, user_id, check_in_at, check_out_at, check_in_flags, source, location_purged_at)
		VALUES ($1, $2, $3, '2026-12-01 09:30Z', '2026-12-01 10:00Z', '{forwarded}', 'telegram', '2026-12-20 03:00Z')`, o.id, o.job.ID, mgr)
	// On the other job, which must not count here.
	mustExec(tb, e, `INSERT INTO time_entries (org_id, job_id, user_id, check_in_at, check_out_at, source)
		VALUES ($1, $2, $3, '2026-12-02 09:00Z', '2026-12-02 17:00Z', 'manual')`, o.id, v.other.ID, mgr)
	if err := e.pool.QueryRow(context.Background(), `INSERT INTO photos (org_id, job_id, user_id, sha256, size_bytes, content_type, storage_key, created_at)
		VALUES ($1, $2, $3, sha256('board'::bytea), 245760, 'image/jpeg', 'photos/board.jpg', '2026-12-01 10:05Z') RETURNING id`,
		o.id, o.job.ID, eng).Scan(&v.photo); err != nil {
		tb.Fatal(err)
	}
	mustExec(tb, e, `INSERT INTO photos (org_id, job_id, user_id, sha256, size_bytes, content_type, storage_key, deleted_at, deleted_by)
		VALUES ($1, $2, $3, sha256('blurred'::bytea), 1000, 'image/jpeg', 'photos/blurred.jpg', now(), $3)`, o.id, o.job.ID, eng)
	mustExec(tb, e, `INSERT INTO notes (org_id, job_id, user_id, body, photo_id, created_at) VALUES ($1, $2, $3, 'Consumer unit', $4, '2026-12-01 10:05Z')`,
		o.id, o.job.ID, eng, v.photo)
	mustExec(tb, e, `INSERT INTO notes (org_id, job_id, user_id, body, created_at) VALUES ($1, $2, $3, 'Key with the neighbour at 14', '2026-12-01 11:00Z')`,
		o.id, o.job.ID, mgr)
	return v
}

func TestFindJobEvidence(t *testing.T) {
	t.Parallel()
	v := newEvidenceEnv(t)
	o := v.o

	t.Run("OK", func(t *testing.T) {
		ev, err := v.svc.FindJobEvidence(o.ctx[fieldops.RoleOwner], o.job.ID)
		if err != nil {
			t.Fatal(err)
		}
		w := ev.Time
		if len(w.Entries) != 3 {
			t.Fatalf("entries = %d, want 3 (the other job's left out)", len(w.Entries))
		}
		if w.Minutes != 150+75+30 {
			t.Errorf("total = %d min, want 255", w.Minutes)
		}
		per := map[int64]int{}
		for _, p := range w.PerEngineer {
			per[p.UserID] = p.Minutes
		}
		if per[o.user[fieldops.RoleEngineer]] != 225 || per[o.user[fieldops.RoleManager]] != 30 || len(w.PerEngineer) != 2 {
			t.Errorf("per engineer = %v, want engineer 225, manager 30", per)
		}
		var closed, open, purged *fieldops.TimeEntry
		for _, e := range w.Entries {
			switch {
			case e.UserID == o.user[fieldops.RoleManager]:
				purged = e
			case e.Open():
				open = e
			default:
				closed = e
			}
		}
		if closed == nil || open == nil || purged == nil {
			t.Fatalf("entries = %+v", w.Entries)
		}
		if closed.In.DistanceM == nil || *closed.In.DistanceM != 12.5 || *closed.In.AccuracyM != 8 || !slices.Equal(closed.In.Flags, []string{"live"}) ||
			len(closed.In.Warnings()) != 0 {
			t.Errorf("check-in evidence = %+v", closed.In)
		}
		if *closed.Out.DistanceM != 640 || !slices.Equal(closed.Out.Warnings(), []string{"off_site"}) || closed.Out.Purged {
			t.Errorf("check-out evidence = %+v", closed.Out)
		}
		if open.Duration(v.now) != 75*time.Minute || open.Out.DistanceM != nil {
			t.Errorf("open entry = %+v", open)
		}
		if !purged.In.Purged || !purged.Out.Purged || purged.In.Lat != nil || !slices.Equal(purged.In.Warnings(), []string{"forwarded"}) {
			t.Errorf("purged entry = %+v / %+v", purged.In, purged.Out)
		}
		if !ev.CanPhotos || len(ev.Photos) != 1 {
			t.Fatalf("photos = %v (can %v), want the one not deleted", ev.Photos, ev.CanPhotos)
		}
		p := ev.Photos[0]
		if p.ID != v.photo || p.SizeBytes != 245760 || len(p.SHA256) != 64 || p.Caption != "Consumer unit" || p.UserName == "" {
			t.Errorf("photo = %+v", p)
		}
		if len(ev.Notes) != 2 || ev.Notes[0].PhotoID != v.photo || ev.Notes[1].Body != "Key with the neighbour at 14" {
			t.Errorf("notes = %+v", ev.Notes)
		}
	})

	t.Run("OpenCountsToNow", func(t *testing.T) {
		v.now = v.now.Add(45 * time.Minute)
		t.Cleanup(func() { v.now = v.now.Add(-45 * time.Minute) })
		ev, err := v.svc.FindJobEvidence(o.ctx[fieldops.RoleOwner], o.job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Time.Minutes != 300 {
			t.Errorf("total at 14:00 = %d min, want 300", ev.Time.Minutes)
		}
	})

	for _, tt := range []struct {
		name   string
		role   fieldops.Role
		photos bool
	}{
		{"Engineer", fieldops.RoleEngineer, true},
		{"ReadOnly", fieldops.RoleReadOnly, true},
		{"OfficeStaff", fieldops.RoleOfficeStaff, true},
		{"AccountantNoPhotos", fieldops.RoleAccountant, false},
	} {
		t.Run(tt.name+"/OK", func(t *testing.T) {
			ev, err := v.svc.FindJobEvidence(o.ctx[tt.role], o.job.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(ev.Time.Entries) != 3 || ev.Time.Minutes != 255 || len(ev.Notes) != 2 {
				t.Errorf("entries %d, %d min, notes %d", len(ev.Time.Entries), ev.Time.Minutes, len(ev.Notes))
			}
			if ev.CanPhotos != tt.photos || (len(ev.Photos) > 0) != tt.photos {
				t.Errorf("photos = %v (can %v), want shown %v", ev.Photos, ev.CanPhotos, tt.photos)
			}
		})
	}

	t.Run("EngineerNotOnJob/ErrNotFound", func(t *testing.T) {
		_, err := v.svc.FindJobEvidence(o.ctx[fieldops.RoleEngineer], v.other.ID)
		wantCode(t, err, fieldops.ENOTFOUND)
	})
	t.Run("OtherOrg/ErrNotFound", func(t *testing.T) {
		x := mustOrg(t, v.env)
		_, err := v.svc.FindJobEvidence(x.ctx[fieldops.RoleOwner], o.job.ID)
		wantCode(t, err, fieldops.ENOTFOUND)
	})
	t.Run("OtherJobApart/OK", func(t *testing.T) {
		ev, err := v.svc.FindJobEvidence(o.ctx[fieldops.RoleOwner], v.other.ID)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Time.Minutes != 480 || len(ev.Photos) != 0 || len(ev.Notes) != 0 {
			t.Errorf("other job = %+v", ev)
		}
	})
}
