package bot

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-telegram/bot/models"

	"github.com/fieldops/fieldops"
)

// Callback data is a short code of at most 64 bytes: "j:<verb>:<job
// id>[:<arg>]" for a job, "org:<id>" for the organisation picker. It only
// says what was pressed: whatever it names goes through the services,
// which refuse what is not the member's.
const (
	verbOpen        = "o"  // open the card as a new message
	verbRefresh     = "r"  // redraw the card in place
	verbCheckIn     = "ci" // ask for a location to check in
	verbCheckOut    = "co" // ask for a location to check out
	verbPhotos      = "ph" // how to send photos; they go to this job
	verbDefect      = "df" // the defect code picker
	verbDefectCode  = "dc" // arg: the code; then the description
	verbComplete    = "cp" // ask to confirm
	verbCompleteYes = "cy"
	verbCertificate = "ce" // the certificate type picker
	verbCertType    = "ct" // arg: the type; creates the draft
	verbLocIn       = "li" // check in with the location just sent
	verbLocOut      = "lo" // check out with the location just sent
	verbPhotoJob    = "pj" // the waiting photos go to this job
)

// cardVerbs are the verbs of a job card's own buttons: a message carrying
// one of them is the card of that job.
var cardVerbs = map[string]bool{verbRefresh: true, verbCheckIn: true, verbCheckOut: true, verbPhotos: true,
	verbDefect: true, verbComplete: true, verbCertificate: true, verbDefectCode: true, verbCompleteYes: true, verbCertType: true}

// actingVerbs are the presses that create something or change state: a
// second press of the same button on the same message soon after is a
// double tap, answered "Done already." and not acted on. Presses that
// only show something (open, refresh, the pickers) are not guarded.
var actingVerbs = map[string]bool{verbCheckIn: true, verbCheckOut: true, verbLocIn: true, verbLocOut: true,
	verbDefectCode: true, verbCompleteYes: true, verbCertType: true, verbPhotoJob: true}

// doubleTapWindow is how long a handled press makes the same press again
// a double tap.
const doubleTapWindow = 10 * time.Second

// press is a handled button press: its data, on which message.
type press struct {
	data  string
	msgID int
}

// doubleTap reports whether the account's press repeats its last handled
// one (same data, same message) within doubleTapWindow, judged by when
// the updates arrived, with no message from the account in between (see
// handleMessage). Otherwise the press is remembered once its update
// commits: a handling that rolls back and is retried is not a double tap
// of itself.
func (b *Bot) doubleTap(ctx context.Context, user int64, data string, msgID int) bool {
	at := receivedAt(ctx)
	if at.IsZero() {
		at = b.Now()
	}
	p := press{data: data, msgID: msgID}
	if last, _, ok := b.pressed.get(user, at); ok && last == p {
		return true
	}
	afterCommit(ctx, func() { b.pressed.put(user, at, p) })
	return false
}

// callbackData is a decoded button press.
type callbackData struct {
	kind string // "j" or "org"
	verb string
	id   int64
	arg  string
}

// jobData encodes a job button.
func jobData(verb string, jobID int64, arg ...string) string {
	s := "j:" + verb + ":" + strconv.FormatInt(jobID, 10)
	if len(arg) > 0 {
		s += ":" + arg[0]
	}
	return s
}

// parseData decodes callback data; ok is false for anything malformed.
func parseData(s string) (callbackData, bool) {
	if len(s) > 64 {
		return callbackData{}, false
	}
	parts := strings.Split(s, ":")
	switch {
	case len(parts) == 2 && parts[0] == "org":
		id, err := strconv.ParseInt(parts[1], 10, 64)
		if err != nil || id <= 0 {
			return callbackData{}, false
		}
		return callbackData{kind: "org", id: id}, true
	case (len(parts) == 3 || len(parts) == 4) && parts[0] == "j" && parts[1] != "":
		id, err := strconv.ParseInt(parts[2], 10, 64)
		if err != nil || id <= 0 {
			return callbackData{}, false
		}
		d := callbackData{kind: "j", verb: parts[1], id: id}
		if len(parts) == 4 {
			d.arg = parts[3]
		}
		return d, true
	}
	return callbackData{}, false
}

var cardRef = regexp.MustCompile(`\(job #(\d+)\)`)

// jobOfCard returns the job whose card m is (from its buttons, else from
// the reference in its first line), or 0.
func jobOfCard(m *models.Message) int64 {
	if m == nil {
		return 0
	}
	if m.ReplyMarkup != nil {
		for _, row := range m.ReplyMarkup.InlineKeyboard {
			for _, b := range row {
				if d, ok := parseData(b.CallbackData); ok && d.kind == "j" && cardVerbs[d.verb] {
					return d.id
				}
			}
		}
	}
	first, _, _ := strings.Cut(m.Text, "\n")
	if sm := cardRef.FindStringSubmatch(first); sm != nil {
		id, _ := strconv.ParseInt(sm[1], 10, 64)
		return id
	}
	return 0
}

func button(text, data string) models.InlineKeyboardButton {
	return models.InlineKeyboardButton{Text: text, CallbackData: data}
}

func inline(rows ...[]models.InlineKeyboardButton) *models.InlineKeyboardMarkup {
	out := rows[:0]
	for _, r := range rows {
		if len(r) > 0 {
			out = append(out, r)
		}
	}
	return &models.InlineKeyboardMarkup{InlineKeyboard: out}
}

// jobCard is what a card shows, loaded through the services.
type jobCard struct {
	job      *fieldops.Job
	evidence *fieldops.JobEvidence   // nil when not the member's to see
	certs    []*fieldops.Certificate // nil when not the member's to see
	defects  []*fieldops.Defect      // nil when not the member's to see
	mine     *fieldops.TimeEntry     // the member's open entry on the job
	access   *fieldops.Access        // to offer only the buttons that may work
	loc      *time.Location          // the organisation's zone
}

// optional is the error of a card's side section: a refusal leaves the
// section out; an ended link or a failure stops the card (answered).
func (t *turn) optional(err error) (abort bool) {
	if err == nil || (isRefusal(err) && fieldops.ErrorCode(err) != fieldops.EUNAUTHORIZED) {
		return false
	}
	t.refused(err)
	return true
}

// loadCard reads a job and what hangs off it; a job that is not the
// member's is answered with the service's "not found".
func (t *turn) loadCard(jobID int64) (*jobCard, bool) {
	job, err := t.b.svc.Jobs.FindJobByID(t.ctx, jobID)
	if t.refused(err) {
		return nil, false
	}
	c := &jobCard{job: job, loc: t.zone()}
	ev, err := t.b.svc.Evidence.FindJobEvidence(t.ctx, jobID)
	if t.optional(err) {
		return nil, false
	}
	if err == nil {
		c.evidence = ev
		for _, e := range ev.Time.Entries {
			if e.UserID == t.self() && e.Open() {
				c.mine = e
			}
		}
	}
	certs, err := t.b.svc.Certificates.FindCertificates(t.ctx, fieldops.CertificateFilter{JobID: jobID})
	if t.optional(err) {
		return nil, false
	}
	if err == nil {
		c.certs = certs
	}
	defects, err := t.b.svc.Defects.FindDefects(t.ctx, fieldops.DefectFilter{JobID: jobID})
	if t.optional(err) {
		return nil, false
	}
	if err == nil {
		c.defects = defects
	}
	if c.access, _ = t.access(); c.access == nil {
		return nil, false
	}
	return c, true
}

// text renders the card.
func (c *jobCard) text(self int64) string {
	j := c.job
	var b strings.Builder
	fmt.Fprintf(&b, "%s · %s (job #%d)\n", jobTypeLabel(j.Type), j.Title, j.ID)
	if j.CustomerName != "" {
		b.WriteString(j.CustomerName + "\n")
	}
	if j.SiteAddress != "" {
		b.WriteString(j.SiteAddress + "\n")
	}
	if j.SiteLatitude != 0 || j.SiteLongitude != 0 {
		b.WriteString(mapLink(j.SiteLatitude, j.SiteLongitude) + "\n")
	}
	fmt.Fprintf(&b, "%s · %s\n", fmtWindow(j.ScheduledStart, j.ScheduledEnd, c.loc, true), statusLabel(j.Status))
	if len(j.Engineers) > 0 {
		names := make([]string, len(j.Engineers))
		for i, e := range j.Engineers {
			names[i] = e.Name
			if e.Primary {
				names[i] += " (primary)"
			}
		}
		b.WriteString("Engineers: " + strings.Join(names, ", ") + "\n")
	}
	if ev := c.evidence; ev != nil {
		mineMin := 0
		var others []string
		for _, e := range ev.Time.Entries {
			if e.UserID == self {
				mineMin += e.Minutes(ev.Time.At)
				continue
			}
			if e.Open() {
				others = append(others, fmt.Sprintf("%s since %s", e.UserName, e.CheckInAt.In(c.loc).Format("15:04")))
			}
		}
		switch {
		case c.mine != nil:
			fmt.Fprintf(&b, "You: checked in since %s\n", c.mine.CheckInAt.In(c.loc).Format("15:04"))
		case mineMin > 0:
			fmt.Fprintf(&b, "You: %s logged\n", fmtMinutes(mineMin))
		case assigned(j, self):
			b.WriteString("You: not checked in\n")
		}
		if len(others) > 0 {
			b.WriteString("On site: " + strings.Join(others, ", ") + "\n")
		}
		if ev.Time.Minutes > 0 {
			fmt.Fprintf(&b, "Time so far: %s\n", fmtMinutes(ev.Time.Minutes))
		}
		if ev.CanPhotos {
			fmt.Fprintf(&b, "Photos: %d\n", len(ev.Photos))
		}
	}
	if c.certs != nil {
		if len(c.certs) == 0 {
			b.WriteString("Certificates: none\n")
		} else {
			cs := make([]string, len(c.certs))
			for i, ce := range c.certs {
				cs[i] = certTypeLabel(ce.Type) + " " + strings.ReplaceAll(ce.Status, "_", " ")
			}
			b.WriteString("Certificates: " + strings.Join(cs, ", ") + "\n")
		}
	}
	if c.defects != nil {
		if len(c.defects) == 0 {
			b.WriteString("Defects: none\n")
		} else {
			count := map[string]int{}
			for _, d := range c.defects {
				count[d.Code]++
			}
			var ds []string
			for _, code := range fieldops.DefectCodes {
				switch n := count[code]; {
				case n == 1:
					ds = append(ds, code)
				case n > 1:
					ds = append(ds, fmt.Sprintf("%s ×%d", code, n))
				}
			}
			b.WriteString("Defects: " + strings.Join(ds, ", ") + "\n")
		}
	}
	if ev := c.evidence; ev != nil && len(ev.Notes) > 0 {
		b.WriteString("Notes:\n")
		notes := ev.Notes
		if len(notes) > 3 {
			notes = notes[len(notes)-3:]
		}
		for _, n := range notes {
			fmt.Fprintf(&b, "• %s %s: %s\n", n.CreatedAt.In(c.loc).Format("15:04"), firstName(n.UserName, "?"), truncate(oneLine(n.Body), 120))
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// keyboard offers the actions the member's permissions allow on the job,
// and Refresh (which also marks the message as the job's card).
func (c *jobCard) keyboard() *models.InlineKeyboardMarkup {
	j, a := c.job, c.access
	self := a.UserID
	active := j.Status == "scheduled" || j.Status == "in_progress"
	mine := assigned(j, self)
	var first, second, third []models.InlineKeyboardButton
	if active && mine && a.Scope(fieldops.FlagJobCheckIn) != fieldops.ScopeNone {
		if c.mine != nil {
			first = append(first, button("Check out", jobData(verbCheckOut, j.ID)))
		} else {
			first = append(first, button("Check in", jobData(verbCheckIn, j.ID)))
		}
	}
	r := j.Resource()
	if active && a.Can(fieldops.FlagPhotoUpload, &r) {
		second = append(second, button("Photos", jobData(verbPhotos, j.ID)))
	}
	if a.Can(fieldops.FlagDefectLog, &r) {
		second = append(second, button("Log defect", jobData(verbDefect, j.ID)))
	}
	if active && a.Can(fieldops.FlagJobComplete, &r) {
		third = append(third, button("Complete", jobData(verbComplete, j.ID)))
	}
	if j.Status != "cancelled" && a.Can(fieldops.FlagCertificateCreate, &r) {
		third = append(third, button("Certificate", jobData(verbCertificate, j.ID)))
	}
	return inline(first, second, third, []models.InlineKeyboardButton{button("Refresh", jobData(verbRefresh, j.ID))})
}

// showCard sends the job's card, or redraws it in place when msgID is
// not 0.
func (t *turn) showCard(jobID int64, msgID int) {
	c, ok := t.loadCard(jobID)
	if !ok {
		return
	}
	t.sendOrEdit(msgID, c.text(t.self()), c.keyboard())
}

// handleList answers /today, /week and /upcoming: the member's jobs (the
// team's, for those who see the team schedule), by start, one line each
// with an Open button.
func (t *turn) handleList(which string) {
	g, ok := t.memberGrants()
	if !ok {
		return
	}
	loc := t.zone()
	now := t.now().In(loc)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	f := fieldops.JobFilter{Limit: 30}
	if !seesTeam(g) {
		f.EngineerID = t.self()
	}
	var title, empty string
	withDay := true
	switch which {
	case "today":
		f.From, f.To = today, today.AddDate(0, 0, 1)
		title, empty, withDay = "Today, "+now.Format("Mon 2 Jan")+":", "No jobs today.", false
	case "week":
		ws := fieldops.WeekStart(now, loc)
		f.From, f.To = ws, ws.AddDate(0, 0, 7)
		title, empty = "This week:", "No jobs this week."
	default:
		f.From, f.Limit = today.AddDate(0, 0, 1), 10
		title, empty = "Coming up:", "Nothing coming up."
	}
	jobs, _, err := t.b.svc.Jobs.FindJobs(t.ctx, f)
	if t.refused(err) {
		return
	}
	if len(jobs) == 0 {
		t.send(empty, nil)
		return
	}
	var b strings.Builder
	b.WriteString(title)
	rows := make([][]models.InlineKeyboardButton, 0, len(jobs))
	for i, j := range jobs {
		fmt.Fprintf(&b, "\n%d. %s", i+1, jobLine(j, loc, withDay, seesTeam(g)))
		rows = append(rows, []models.InlineKeyboardButton{button(truncate(fmt.Sprintf("Open %d: %s", i+1, j.Title), 40), jobData(verbOpen, j.ID))})
	}
	t.send(b.String(), &models.InlineKeyboardMarkup{InlineKeyboard: rows})
}

// jobLine is a job in a list.
func jobLine(j *fieldops.Job, loc *time.Location, withDay, team bool) string {
	s := fmtWindow(j.ScheduledStart, j.ScheduledEnd, loc, withDay) + " " + j.Title
	if j.SiteAddress != "" {
		s += " — " + j.SiteAddress
	}
	if team && len(j.Engineers) > 0 {
		names := make([]string, len(j.Engineers))
		for i, e := range j.Engineers {
			names[i] = firstName(e.Name, "?")
		}
		s += " (" + strings.Join(names, ", ") + ")"
	}
	if j.Status == "completed" || j.Status == "cancelled" {
		s += " — " + j.Status
	}
	return s
}

// handleJob answers /job <number>.
func (t *turn) handleJob(arg string) {
	id, err := strconv.ParseInt(strings.TrimPrefix(strings.TrimSpace(arg), "#"), 10, 64)
	if err != nil || id <= 0 {
		t.send("Send /job and the job number, e.g. /job 42. Or open one from /today.", nil)
		return
	}
	t.showCard(id, 0)
}

// handleCapacity answers /capacity: who is free for an emergency now.
func (t *turn) handleCapacity() {
	free, err := t.b.svc.Capacity.FindFreeNow(t.ctx, nil)
	if t.refused(err) {
		return
	}
	if len(free) == 0 {
		t.send("Nobody is free right now.", nil)
		return
	}
	var b strings.Builder
	b.WriteString("Free now:")
	for _, f := range free {
		fmt.Fprintf(&b, "\n• %s — %s booked", f.Name, fmtMinutes(f.BookedTodayMinutes))
		if f.WorkingTodayMinutes > 0 {
			fmt.Fprintf(&b, " of %s", fmtMinutes(f.WorkingTodayMinutes))
		}
		if f.DistanceM != nil {
			fmt.Fprintf(&b, ", %s away", fmtDistance(*f.DistanceM))
		}
	}
	t.send(b.String(), nil)
}

// todaysJobs are the member's own jobs today that can still be worked on
// (for the "which job?" questions).
func (t *turn) todaysJobs() ([]*fieldops.Job, bool) {
	loc := t.zone()
	now := t.now().In(loc)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	jobs, _, err := t.b.svc.Jobs.FindJobs(t.ctx, fieldops.JobFilter{EngineerID: t.self(), From: today, To: today.AddDate(0, 0, 1), Limit: 20})
	if t.refused(err) {
		return nil, false
	}
	out := jobs[:0]
	for _, j := range jobs {
		if j.Status == "scheduled" || j.Status == "in_progress" {
			out = append(out, j)
		}
	}
	return out, true
}

// jobTitle is the title of a job for a short reply ("that job" if it
// cannot be read).
func (t *turn) jobTitle(id int64) string {
	j, err := t.b.svc.Jobs.FindJobByID(t.ctx, id)
	if err != nil || j.Title == "" {
		return "that job"
	}
	return j.Title
}

func assigned(j *fieldops.Job, userID int64) bool {
	for _, e := range j.Engineers {
		if e.UserID == userID {
			return true
		}
	}
	return false
}

func mapLink(lat, lng float64) string {
	return "https://www.google.com/maps/search/?api=1&query=" +
		strconv.FormatFloat(lat, 'f', -1, 64) + "," + strconv.FormatFloat(lng, 'f', -1, 64)
}

// fmtWindow writes a job's window: "09:00–12:00", with the day "Tue 1 Dec
// 09:00–12:00".
func fmtWindow(start, end time.Time, loc *time.Location, withDay bool) string {
	s, e := start.In(loc), end.In(loc)
	out := s.Format("15:04")
	if withDay {
		out = s.Format("Mon 2 Jan 15:04")
	}
	if e.Year() == s.Year() && e.YearDay() == s.YearDay() {
		return out + "–" + e.Format("15:04")
	}
	return out + " – " + e.Format("Mon 2 Jan 15:04")
}

// fmtMinutes writes a duration in minutes: "45 min", "3 h", "4 h 28 min".
func fmtMinutes(m int) string {
	switch {
	case m < 60:
		return fmt.Sprintf("%d min", m)
	case m%60 == 0:
		return fmt.Sprintf("%d h", m/60)
	}
	return fmt.Sprintf("%d h %d min", m/60, m%60)
}

// fmtDistance writes metres: "35 m", "1.2 km", "12 km".
func fmtDistance(m float64) string {
	switch {
	case m < 1000:
		return fmt.Sprintf("%d m", int(m+0.5))
	case m < 10000:
		return strconv.FormatFloat(float64(int(m/100+0.5))/10, 'f', -1, 64) + " km"
	}
	return fmt.Sprintf("%d km", int(m/1000+0.5))
}

var typeLabels = map[string]string{
	"eicr": "EICR", "eic": "EIC", "minor_works": "Minor works", "pat": "PAT", "fire_alarm": "Fire alarm",
	"gas_safety": "Gas safety", "install": "Install", "repair": "Repair", "emergency": "Emergency",
	"emergency_lighting": "Emergency lighting",
}

func jobTypeLabel(t string) string {
	if l, ok := typeLabels[t]; ok {
		return l
	}
	return t
}

func certTypeLabel(t string) string { return jobTypeLabel(t) }

func statusLabel(s string) string { return strings.ReplaceAll(s, "_", " ") }

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
