package fieldops

import "time"

// Schedule is the dispatch board of one local day of the organisation
// (schedule.view_team): every engineer with the jobs they are on that day.
type Schedule struct {
	Day       time.Time // local midnight in the organisation's zone
	Engineers []ScheduleRow
}

// ScheduleRow is one engineer's line of the board: their assigned jobs,
// neither cancelled nor deleted, that overlap the day, by start.
type ScheduleRow struct {
	UserID       int64
	Name, Colour string
	Jobs         []*Job
}
