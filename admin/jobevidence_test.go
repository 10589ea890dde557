package admin_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/fieldops/fieldops"
)

// TestJobPageEvidence: the job page shows each engineer's time on site
// with its location evidence and the summed hours, the photos to those
// who may see them, and the notes.
func TestJobPageEvidence(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	o := a.mustFieldOrg(t)
	eng, mgr := o.user[fieldops.RoleEngineer], o.user[fieldops.RoleManager]
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := a.pool.Exec(context.Background(), sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// 09:05–11:35 (2 h 30 min), checked out 640 m away; the manager
	// 09:30–10:15 (45 min), location since removed.
	exec(`INSERT INTO time_entries (org_id, job_id, user_id, check_in_at, check_out_at,
			check_in_lat, check_in_lng, check_in_accuracy_m, check_in_distance_m, check_in_flags,
			check_out_lat, check_out_lng, check_out_accuracy_m, check_out_distance_m, check_out_flags, source)
		VALUES ($1, $2, $3, '2027-03-01 09:05Z', '2027-03-01 11:35Z', 53.4777, -2.2366, 9, 42, '{}',
			53.4830, -2.2366, 20, 640, '{off_site}', 'telegram')`, o.id, o.job.ID, eng)
	exec(`INSERT INTO time_entries (org_id, job_id, user_id, check_in_at, check_out_at, check_in_flags, source, location_purged_at)
		VALUES ($1, $2, $3, '2027-03-01 09:30Z', '2027-03-01 10:15Z', '{forwarded}', 'telegram', '2027-04-01 03:00Z')`, o.id, o.job.ID, mgr)
	exec(`INSERT INTO photos (org_id, job_id, user_id, sha256, size_bytes, content_type, storage_key)
		VALUES ($1, $2, $3, sha256('board'::bytea), 245760, 'image/jpeg', 'photos/board.jpg')`, o.id, o.job.ID, eng)
	exec(`INSERT INTO notes (org_id, job_id, user_id, body) VALUES ($1, $2, $3, 'Key with the neighbour at 14')`, o.id, o.job.ID, mgr)
	path := fmt.Sprintf("/jobs/%d", o.job.ID)

	for _, tt := range []struct {
		role   fieldops.Role
		photos bool
	}{
		{fieldops.RoleOwner, true},
		{fieldops.RoleEngineer, true},
		{fieldops.RoleAccountant, false},
	} {
		t.Run(tt.role.String()+"/OK", func(t *testing.T) {
			code, body, _ := a.do(t, o.client[tt.role], "GET", path, nil)
			if code != http.StatusOK {
				t.Fatalf("= %d\n%s", code, excerpt(body))
			}
			for _, want := range []string{`id="time"`, "Mon 1 Mar 2027 09:05", "42 m from the site", "(±9 m)", "640 m from the site",
				`<span class="warn">off site</span>`, `<span class="warn">forwarded location</span>`,
				"location removed after the retention period", "<small>2 h 30 min</small>", "<small>45 min</small>",
				"Total: 3 h 15 min", "Key with the neighbour at 14"} {
				if !strings.Contains(body, want) {
					t.Errorf("job page lacks %q", want)
				}
			}
			if got := strings.Contains(body, `id="photos"`) && strings.Contains(body, "240 KB"); got != tt.photos {
				t.Errorf("photos shown = %v, want %v", got, tt.photos)
			}
		})
	}
	t.Run("EngineerNotOnJob/ErrNotFound", func(t *testing.T) {
		exec(`INSERT INTO time_entries (org_id, job_id, user_id, check_in_at, check_out_at, source)
			VALUES ($1, $2, $3, '2027-03-02 09:00Z', '2027-03-02 11:00Z', 'manual')`, o.id, o.other.ID, mgr)
		code, body, _ := a.do(t, o.client[fieldops.RoleEngineer], "GET", fmt.Sprintf("/jobs/%d", o.other.ID), nil)
		if code != http.StatusNotFound || strings.Contains(body, "Time on site") {
			t.Fatalf("= %d\n%s", code, excerpt(body))
		}
	})
}
