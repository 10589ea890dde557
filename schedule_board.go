package fieldops

import "time"

// Engineers per page of the dispatch board: a page of 50 engineers is
// about 275 job blocks; a board of 500 on one page is a megabyte of HTML.
const (
	DefaultSchedulePerPage = 50
	MaxSchedulePerPage     = 200
)

// ScheduleQuery picks the day of the dispatch board and which engineers
// are on it.
type ScheduleQuery struct {
	Day time.Time // any instant of the local day wanted
	// Name keeps the engineers whose name contains it, ignoring case.
	Name string
	// Page is the page of engineers by name, from 1 (0 means 1); a page
	// past the last is the last.
	Page int
	// PerPage is the number of engineers on a page: 0 means
	// DefaultSchedulePerPage, at most MaxSchedulePerPage.
	PerPage int
}

// Check reports the first value of q that cannot be used.
func (q ScheduleQuery) Check() error {
	if q.Page < 0 {
		return Invalid("page", "The page is a number from 1.")
	}
	if q.PerPage < 0 || q.PerPage > MaxSchedulePerPage {
		return Invalid("per_page", "Show from 1 to %d engineers on a page.", MaxSchedulePerPage)
	}
	return nil
}

// Schedule is one page of the dispatch board of one local day of the
// organisation (schedule.view_team): engineers with the jobs they are on
// that day.
type Schedule struct {
	Day       time.Time // local midnight in the organisation's zone
	Engineers []ScheduleRow
	// Page of Pages (both from 1; Pages is 1 when no engineer matches),
	// PerPage engineers each; Total engineers match the query.
	Page, Pages, PerPage, Total int
}

// ScheduleRow is one engineer's line of the board: their assigned jobs,
// neither cancelled nor deleted, that overlap the day, by start.
type ScheduleRow struct {
	UserID       int64
	Name, Colour string
	Jobs         []*Job
}
