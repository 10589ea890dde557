package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldops/fieldops"
)

// CapacityService implements fieldops.CapacityService.
type CapacityService struct{ db *DB }

var _ fieldops.CapacityService = (*CapacityService)(nil)

// NewCapacityService returns the capacity service.
func NewCapacityService(db *DB) *CapacityService { return &CapacityService{db: db} }

// capacityOrg is what capacity needs of the organisation.
type capacityOrg struct {
	loc        *time.Location
	tz         string
	amber, red int
}

func findCapacityOrg(ctx context.Context, tx pgx.Tx, orgID int64) (*capacityOrg, error) {
	o := &capacityOrg{}
	if err := tx.QueryRow(ctx, `SELECT time_zone, capacity_amber_pct, capacity_red_pct FROM organisations WHERE id = $1`, orgID).
		Scan(&o.tz, &o.amber, &o.red); err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation(o.tz)
	if err != nil {
		return nil, fmt.Errorf("organisation time zone %q: %w", o.tz, err)
	}
	o.loc = loc
	return o, nil
}

// engineer is a member who can be put on a job.
type engineer struct {
	id      int64
	name    string
	colour  string
	working [7]int // Monday first
}

// findEngineers returns the active members whose effective permissions
// let them check in to jobs (the same rule as checkAssignable), by name.
// Roles and overrides are read here and judged with EffectiveGrants in Go,
// so the rule lives in one place: a few hundred membership rows at most.
func findEngineers(ctx context.Context, tx pgx.Tx, acc *access) ([]engineer, error) {
	rows, err := tx.Query(ctx, `SELECT m.user_id, u.name, m.colour, m.role, m.overrides, m.working_minutes
		FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE m.org_id = $1 AND m.status = 'active' ORDER BY u.name, m.user_id`, acc.OrgID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []engineer
	for rows.Next() {
		var (
			e         engineer
			roleName  string
			overrides []byte
			minutes   []int32
		)
		if err := rows.Scan(&e.id, &e.name, &e.colour, &roleName, &overrides, &minutes); err != nil {
			return nil, err
		}
		_, grants, err := memberGrants(roleName, overrides, acc.plan.Overrides)
		if err != nil {
			return nil, err
		}
		if grants.Scope(fieldops.FlagJobCheckIn) == fieldops.ScopeNone {
			continue
		}
		for i := 0; i < 7 && i < len(minutes); i++ {
			e.working[i] = int(minutes[i])
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// jobsOverlapping selects the jobs that count for capacity (not
// cancelled, not deleted) whose scheduled window overlaps [from, to):
// id, scheduled_start, scheduled_end, estimated_minutes and site_id. from
// and to are SQL expressions; $1 is the organisation.
//
// A plain "start < to AND end > from" has no lower bound on the start, so
// it would range-scan every earlier job of the organisation. A job's
// window is at most 31 days (checkWindow, and the CHECK of migration 004),
// counted as 744 hours (a calendar "31 days" before a day would be an
// hour short across the spring clock change),
// and almost all jobs are shorter than a day, so the query is split in
// two disjoint range scans: jobs starting from 24 hours before from (on
// jobs_org_start), and longer jobs starting up to 31 days before from (on
// the small partial index jobs_org_long). A short job that starts earlier
// than that has ended before from.
func jobsOverlapping(from, to string) string {
	const cols = `j.id, j.scheduled_start, j.scheduled_end, j.estimated_minutes, j.site_id`
	const where = ` FROM jobs j WHERE j.org_id = $1 AND j.deleted_at IS NULL AND j.status <> 'cancelled'
		AND j.scheduled_start < ` + "%[2]s" + ` AND j.scheduled_end > ` + "%[1]s"
	return fmt.Sprintf(`SELECT `+cols+where+`
		AND j.scheduled_start >= %[1]s - interval '24 hours'
	UNION ALL
	SELECT `+cols+where+`
		AND j.scheduled_end - j.scheduled_start > interval '24 hours'
		AND j.scheduled_start >= %[1]s - interval '744 hours' AND j.scheduled_start < %[1]s - interval '24 hours'`, from, to)
}

// localDays is the n local days from $2 (a date) in zone $3: index i from
// 0, day_start and day_end as timestamptz. A day is 23 or 25 hours long
// when the clocks change. It is MATERIALIZED so that the seven boundaries
// are computed once, not for every job they are compared with.
const localDays = `SELECT i, (($2::date + i) + time '00:00') AT TIME ZONE $3 AS day_start,
	(($2::date + i + 1) + time '00:00') AT TIME ZONE $3 AS day_end
	FROM generate_series(0, $4::int - 1) AS i`

// assignmentsOverlapping selects the assignments of the organisation's
// jobs that count for capacity (job neither cancelled nor deleted: live)
// whose scheduled window overlaps [from, to): user_id, scheduled_start,
// scheduled_end and estimated_minutes, the job's values that migration
// 005 copies onto job_assignments and keeps in step by triggers. from and
// to are SQL expressions; $1 is the organisation.
//
// The same two disjoint range scans as jobsOverlapping, on the covering
// partial indexes job_assignments_window (assignments starting from 24
// hours before from) and job_assignments_window_long (jobs longer than a
// day starting up to 31 days before from): both index-only, one entry
// per engineer and job, no visit to jobs.
func assignmentsOverlapping(from, to string) string {
	const cols = `a.user_id, a.scheduled_start, a.scheduled_end, a.estimated_minutes`
	const where = ` FROM job_assignments a WHERE a.org_id = $1 AND a.live
		AND a.scheduled_start < ` + "%[2]s" + ` AND a.scheduled_end > ` + "%[1]s"
	return fmt.Sprintf(`SELECT `+cols+where+`
		AND a.scheduled_start >= %[1]s - interval '24 hours'
	UNION ALL
	SELECT `+cols+where+`
		AND a.scheduled_end - a.scheduled_start > interval '24 hours'
		AND a.scheduled_start >= %[1]s - interval '744 hours' AND a.scheduled_start < %[1]s - interval '24 hours'`, from, to)
}

// bookedQuery sums, per engineer and local day, the booked minutes: for
// each job, the part of its window inside the day, scaled down by
// estimated/window when the estimate is shorter than the window.
//
// The plan it is written for (see docs/PERFORMANCE.md): the n local days
// are computed once (MATERIALIZED), and for each day the assignments
// overlapping it are two index-only range scans of job_assignments
// (assignmentsOverlapping with the day's bounds; jobs is not read), so no
// assignment is compared with days it is not near; then one hashed GROUP
// BY. Rows of members who are not engineers are dropped by the caller,
// not by an ANY over hundreds of ids per row. Seconds are date_part
// (float8), not extract (numeric since PostgreSQL 14, several times
// slower per row).
var bookedQuery = `WITH days AS MATERIALIZED (` + localDays + `)
	SELECT w.user_id, d.i,
	       round(sum(date_part('epoch', LEAST(w.scheduled_end, d.day_end) - GREATEST(w.scheduled_start, d.day_start))
	                 * LEAST(1, w.estimated_minutes * 60 / date_part('epoch', w.scheduled_end - w.scheduled_start))) / 60)::int
	FROM days d
	CROSS JOIN LATERAL (` + assignmentsOverlapping(`d.day_start`, `d.day_end`) + `) w
	GROUP BY w.user_id, d.i`

// plainPlans keeps the capacity queries on the plans above: no parallel
// workers (their start-up costs more than these small scans) and no JIT
// (compiling costs 100 ms when a misestimate crosses jit_above_cost). For
// this transaction only.
const plainPlans = `SET LOCAL max_parallel_workers_per_gather = 0; SET LOCAL jit = off`

// bookedByDay returns each engineer's booked minutes on the n local days
// from first (a date in the organisation's zone), in one aggregating
// query.
func bookedByDay(ctx context.Context, tx pgx.Tx, orgID int64, o *capacityOrg, first time.Time, n int, ids []int64) (map[int64][]int, error) {
	out := make(map[int64][]int, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	if _, err := tx.Exec(ctx, plainPlans); err != nil {
		return nil, err
	}
	want := make(map[int64]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	rows, err := tx.Query(ctx, bookedQuery, orgID, first.Format(time.DateOnly), o.tz, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id         int64
			i, minutes int
		)
		if err := rows.Scan(&id, &i, &minutes); err != nil {
			return nil, err
		}
		if !want[id] {
			continue
		}
		if out[id] == nil {
			out[id] = make([]int, n)
		}
		out[id][i] = minutes
	}
	return out, rows.Err()
}

// weekday returns the index of t's weekday with Monday 0.
func weekday(t time.Time) int { return (int(t.Weekday()) + 6) % 7 }

// FindCapacityWeek returns the capacity board of the week containing
// weekOf (capacity.view).
//
// Engineers are the active members whose effective permissions include
// job.check_in (owners, admins and managers can be put on jobs too), shown
// when they have working time in the week or anything booked in it.
//
// A day is a local day of the organisation's time zone, midnight to
// midnight, so 23 or 25 hours long when the clocks change. The booked
// minutes of an engineer on a day are the sum, over the jobs they are
// assigned to that are neither cancelled nor deleted, of the part of the
// job's scheduled window [start, end) inside that day. When a job's
// estimated time is shorter than its window (a four-hour job booked
// "some time between 8 and 5"), each day's part is scaled by
// estimated/window, so the job books exactly its estimate, spread over
// the window in proportion; an estimate longer than the window counts as
// the window. A job with two engineers books each of them in full, and
// two overlapping jobs of one engineer both count: a double-booked
// engineer is over-booked, and the board should say so. Minutes are
// rounded per engineer and day.
func (s *CapacityService) FindCapacityWeek(ctx context.Context, weekOf time.Time) (*fieldops.CapacityWeek, error) {
	var week *fieldops.CapacityWeek
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.load(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.require(fieldops.FlagCapacityView); err != nil {
			return err
		}
		o, err := findCapacityOrg(ctx, tx, acc.OrgID)
		if err != nil {
			return err
		}
		engineers, err := findEngineers(ctx, tx, acc)
		if err != nil {
			return err
		}
		start := fieldops.WeekStart(weekOf, o.loc)
		booked, err := bookedByDay(ctx, tx, acc.OrgID, o, start, 7, idsOf(engineers))
		if err != nil {
			return err
		}
		week = &fieldops.CapacityWeek{Start: start, AmberPct: o.amber, RedPct: o.red, Engineers: make([]fieldops.EngineerWeek, 0, len(engineers))}
		for _, e := range engineers {
			row := fieldops.EngineerWeek{UserID: e.id, Name: e.name, Colour: e.colour}
			b := booked[e.id]
			for i := range row.Days {
				d := &row.Days[i]
				d.Date = time.Date(start.Year(), start.Month(), start.Day()+i, 0, 0, 0, 0, o.loc)
				d.WorkingMinutes = e.working[i]
				if b != nil {
					d.BookedMinutes = b[i]
				}
				d.Percent, d.Level = fieldops.CapacityLevel(d.BookedMinutes, d.WorkingMinutes, o.amber, o.red)
				row.BookedMinutes += d.BookedMinutes
				row.WorkingMinutes += d.WorkingMinutes
			}
			if row.BookedMinutes == 0 && row.WorkingMinutes == 0 {
				continue
			}
			week.Engineers = append(week.Engineers, row)
		}
		return nil
	})
	return week, err
}

// FindFreeNow lists the engineers who could take an emergency call now
// (capacity.view): not on a job now (no assigned job, neither cancelled
// nor deleted, whose scheduled window contains now) and not red today.
// Someone with no working time today and nothing booked is listed too,
// with level "off", so that a weekend call still finds people.
//
// With near, the list is nearest first. Where an engineer is now is taken
// from the schedule: the site of the last job of theirs today that has
// already ended (by scheduled end); without one the distance is unknown
// and they come after everyone whose distance is known. Ties, and the
// whole list without near, go by the minutes booked today, fewest first,
// then by name.
func (s *CapacityService) FindFreeNow(ctx context.Context, near *fieldops.LatLng) ([]*fieldops.FreeEngineer, error) {
	if near != nil {
		if err := near.Validate(); err != nil {
			return nil, err
		}
	}
	var out []*fieldops.FreeEngineer
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.load(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.require(fieldops.FlagCapacityView); err != nil {
			return err
		}
		o, err := findCapacityOrg(ctx, tx, acc.OrgID)
		if err != nil {
			return err
		}
		engineers, err := findEngineers(ctx, tx, acc)
		if err != nil {
			return err
		}
		ids := idsOf(engineers)
		now := s.db.now()
		local := now.In(o.loc)
		today := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, o.loc)
		booked, err := bookedByDay(ctx, tx, acc.OrgID, o, today, 1, ids)
		if err != nil {
			return err
		}
		where, err := whereNow(ctx, tx, acc.OrgID, today, now, ids)
		if err != nil {
			return err
		}
		for _, e := range engineers {
			st := where[e.id]
			if st.busy {
				continue
			}
			f := &fieldops.FreeEngineer{UserID: e.id, Name: e.name, WorkingTodayMinutes: e.working[weekday(today)]}
			if b := booked[e.id]; b != nil {
				f.BookedTodayMinutes = b[0]
			}
			_, f.Level = fieldops.CapacityLevel(f.BookedTodayMinutes, f.WorkingTodayMinutes, o.amber, o.red)
			if f.Level == fieldops.CapacityRed {
				continue
			}
			if near != nil && st.last != nil {
				d := fieldops.DistanceM(*near, *st.last)
				f.DistanceM = &d
			}
			out = append(out, f)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(a, b *fieldops.FreeEngineer) int {
		switch {
		case a.DistanceM != nil && b.DistanceM == nil:
			return -1
		case a.DistanceM == nil && b.DistanceM != nil:
			return 1
		case a.DistanceM != nil && b.DistanceM != nil && *a.DistanceM != *b.DistanceM:
			return cmp.Compare(*a.DistanceM, *b.DistanceM)
		}
		return cmp.Or(cmp.Compare(a.BookedTodayMinutes, b.BookedTodayMinutes), cmp.Compare(a.Name, b.Name), cmp.Compare(a.UserID, b.UserID))
	})
	return out, nil
}

// engineerState is where an engineer is now, by the schedule.
type engineerState struct {
	busy bool             // on a job now
	last *fieldops.LatLng // site of the last job today that has ended
	end  time.Time        // and when it ended
}

// whereNow reads the engineers' jobs between the start of today and now:
// who is on a job now, and where each one's last finished job today was.
func whereNow(ctx context.Context, tx pgx.Tx, orgID int64, today, now time.Time, ids []int64) (map[int64]engineerState, error) {
	out := make(map[int64]engineerState, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	// [today 00:00, now] inclusive of now: a job starting this very
	// minute makes its engineer busy.
	rows, err := tx.Query(ctx, `WITH work AS (`+jobsOverlapping(`$2::timestamptz`, `$3::timestamptz + interval '1 microsecond'`)+`)
		SELECT a.user_id, w.scheduled_start <= $3 AND w.scheduled_end > $3, w.scheduled_end, s.latitude, s.longitude
		FROM work w
		CROSS JOIN LATERAL (SELECT a.user_id FROM job_assignments a WHERE a.job_id = w.id OFFSET 0) a
		JOIN sites s ON s.org_id = $1 AND s.id = w.site_id
		WHERE a.user_id = ANY($4)`, orgID, today, now, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id       int64
			busy     bool
			end      time.Time
			lat, lng float64
		)
		if err := rows.Scan(&id, &busy, &end, &lat, &lng); err != nil {
			return nil, err
		}
		st := out[id]
		st.busy = st.busy || busy
		if !end.After(now) && (st.last == nil || end.After(st.end)) {
			st.last, st.end = &fieldops.LatLng{Lat: lat, Lng: lng}, end
		}
		out[id] = st
	}
	return out, rows.Err()
}

func idsOf(es []engineer) []int64 {
	ids := make([]int64, len(es))
	for i, e := range es {
		ids[i] = e.id
	}
	return ids
}
