package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldops/fieldops"
)

// FindSchedule returns the dispatch board of the organisation's local day
// containing day (schedule.view_team): every engineer (as on the capacity
// board, the active members whose effective permissions include
// job.check_in), by name, each with the jobs assigned to them that are
// neither cancelled nor deleted and whose scheduled window overlaps the
// day [00:00, next 00:00) in the organisation's zone, by start. A job
// spanning midnight is on both days; a job with two engineers is on both
// rows.
func (s *JobService) FindSchedule(ctx context.Context, day time.Time) (*fieldops.Schedule, error) {
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
		local := day.In(o.loc)
		from := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, o.loc)
		to := time.Date(local.Year(), local.Month(), local.Day()+1, 0, 0, 0, 0, o.loc)
		engineers, err := findEngineers(ctx, tx, acc)
		if err != nil {
			return err
		}
		jobs, err := findJobsOverlapping(ctx, tx, acc.OrgID, from, to)
		if err != nil {
			return err
		}
		byUser := make(map[int64][]*fieldops.Job)
		for _, j := range jobs {
			for _, e := range j.Engineers {
				byUser[e.UserID] = append(byUser[e.UserID], j)
			}
		}
		out = &fieldops.Schedule{Day: from, Engineers: make([]fieldops.ScheduleRow, len(engineers))}
		for i, e := range engineers {
			out.Engineers[i] = fieldops.ScheduleRow{UserID: e.id, Name: e.name, Colour: e.colour, Jobs: byUser[e.id]}
		}
		return nil
	})
	return out, err
}

// findJobsOverlapping loads the organisation's jobs that count for the
// schedule (jobsOverlapping: neither cancelled nor deleted) whose window
// overlaps [from, to), by start then id, with their engineers.
func findJobsOverlapping(ctx context.Context, tx pgx.Tx, orgID int64, from, to time.Time) ([]*fieldops.Job, error) {
	rows, err := tx.Query(ctx, `SELECT `+jobColumns+jobFrom+`
		WHERE j.org_id = $1 AND j.id IN (SELECT w.id FROM (`+jobsOverlapping(`$2::timestamptz`, `$3::timestamptz`)+`) w)
		ORDER BY j.scheduled_start, j.id`, orgID, from, to)
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
