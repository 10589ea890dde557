package store

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldops/fieldops"
)

// FindSchedule returns a page of the dispatch board of the organisation's
// local day containing q.Day (schedule.view_team): the engineers (as on
// the capacity board, the active members whose effective permissions
// include job.check_in) whose name contains q.Name, by name, q.PerPage at
// a time, each with the jobs assigned to them that are neither cancelled
// nor deleted and whose scheduled window overlaps the day [00:00, next
// 00:00) in the organisation's zone, by start. A job spanning midnight is
// on both days; a job with two engineers is on both rows.
func (s *JobService) FindSchedule(ctx context.Context, q fieldops.ScheduleQuery) (*fieldops.Schedule, error) {
	if err := q.Check(); err != nil {
		return nil, err
	}
	per := q.PerPage
	if per == 0 {
		per = fieldops.DefaultSchedulePerPage
	}
	var out *fieldops.Schedule
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.load(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.require(fieldops.FlagScheduleViewTeam); err != nil {
			return err
		}
		o, err := findCapacityOrg(ctx, tx, acc.OrgID)
		if err != nil {
			return err
		}
		local := q.Day.In(o.loc)
		from := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, o.loc)
		to := time.Date(local.Year(), local.Month(), local.Day()+1, 0, 0, 0, 0, o.loc)
		engineers, err := findEngineers(ctx, tx, acc)
		if err != nil {
			return err
		}
		if name := strings.ToLower(strings.TrimSpace(q.Name)); name != "" {
			engineers = slices.DeleteFunc(engineers, func(e engineer) bool {
				return !strings.Contains(strings.ToLower(e.name), name)
			})
		}
		out = &fieldops.Schedule{Day: from, PerPage: per, Total: len(engineers)}
		out.Pages = max(1, (len(engineers)+per-1)/per)
		out.Page = min(max(q.Page, 1), out.Pages)
		first := (out.Page - 1) * per
		engineers = engineers[first:min(first+per, len(engineers))]
		ids := make([]int64, len(engineers))
		for i, e := range engineers {
			ids[i] = e.id
		}
		jobs, err := findJobsOverlapping(ctx, tx, acc.OrgID, from, to, ids)
		if err != nil {
			return err
		}
		byUser := make(map[int64][]*fieldops.Job, len(engineers))
		for _, j := range jobs {
			for _, e := range j.Engineers {
				byUser[e.UserID] = append(byUser[e.UserID], j)
			}
		}
		out.Engineers = make([]fieldops.ScheduleRow, len(engineers))
		for i, e := range engineers {
			out.Engineers[i] = fieldops.ScheduleRow{UserID: e.id, Name: e.name, Colour: e.colour, Jobs: byUser[e.id]}
		}
		return nil
	})
	return out, err
}

// findJobsOverlapping loads the organisation's jobs that count for the
// schedule (live assignments: neither cancelled nor deleted) of any of
// the users whose window overlaps [from, to), by start then id, with
// their engineers. The assignments are found on
// job_assignments_user_window: per user, the range of starts from 31
// days (the longest window) before from up to to.
func findJobsOverlapping(ctx context.Context, tx pgx.Tx, orgID int64, from, to time.Time, users []int64) ([]*fieldops.Job, error) {
	if len(users) == 0 {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `SELECT `+jobColumns+jobFrom+`
		WHERE j.org_id = $1 AND j.id IN (
			SELECT a.job_id FROM unnest($4::bigint[]) u(id)
			JOIN LATERAL (SELECT a.job_id FROM job_assignments a
				WHERE a.org_id = $1 AND a.user_id = u.id AND a.live
				  AND a.scheduled_start >= $2::timestamptz - interval '744 hours'
				  AND a.scheduled_start < $3::timestamptz AND a.scheduled_end > $2::timestamptz) a ON true)
		ORDER BY j.scheduled_start, j.id`, orgID, from, to, users)
	if err != nil {
		return nil, err
	}
	var jobs []*fieldops.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		jobs = append(jobs, j)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return jobs, loadEngineers(ctx, tx, orgID, jobs)
}
