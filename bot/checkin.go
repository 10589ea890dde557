package bot

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/go-telegram/bot/models"

	"github.com/fieldops/fieldops"
)

// Chat states: the question the bot asked and the next message answers.
const (
	stateCheckIn           = "check_in"           // waiting for a location to check in to JobID
	stateCheckOut          = "check_out"          // waiting for a location to check out of JobID
	stateLocation          = "location"           // a location came unasked: which job is it for?
	statePhotos            = "photos"             // photos sent now go to JobID
	statePhotoJob          = "photo_job"          // photos came with no job: which job are they for?
	stateDefectDescription = "defect_description" // waiting for the description of a defect on JobID
)

const textShareLocation = "📍 Send my location"

// locationKeyboard asks for the phone's location, or to cancel.
func locationKeyboard() *models.ReplyKeyboardMarkup {
	return &models.ReplyKeyboardMarkup{
		Keyboard: [][]models.KeyboardButton{
			{{Text: textShareLocation, RequestLocation: true}},
			{{Text: "Cancel"}},
		},
		ResizeKeyboard:        true,
		InputFieldPlaceholder: "Tap Send my location",
	}
}

// removeKeyboard takes the reply keyboard away.
func removeKeyboard() *models.ReplyKeyboardRemove {
	return &models.ReplyKeyboardRemove{RemoveKeyboard: true}
}

// askLocation answers Check in / Check out on a card: the job goes
// through the service first (someone else's job is "not found"), then the
// next location message answers.
func (t *turn) askLocation(kind string, jobID int64, cardMsgID int) {
	job, err := t.b.svc.Jobs.FindJobByID(t.ctx, jobID)
	if t.refused(err) {
		return
	}
	if !t.setState(fieldops.ChatState{Kind: kind, JobID: jobID, Data: map[string]any{"card": cardMsgID}}) {
		return
	}
	verb := "Check in to"
	if kind == stateCheckOut {
		verb = "Check out of"
	}
	t.send(fmt.Sprintf("%s %s: tap %s below.", verb, job.Title, textShareLocation), locationKeyboard())
}

// handleLocation takes a location message: the answer to a pending
// check-in or check-out, or else a question back (which job?).
func (t *turn) handleLocation(m *models.Message, edited bool) {
	in := locationInput(m, edited)
	in.ReceivedAt = receivedAt(t.ctx)
	s, ok := t.state()
	if !ok {
		return
	}
	switch s.Kind {
	case stateCheckIn, stateCheckOut:
		t.checkInOut(s.Kind, s.JobID, in, intData(s.Data, "card"), 0)
	default:
		t.askWhichJob(in)
	}
}

// locationInput reads a location message as sent: a venue's location, the
// phone's accuracy, the message's time (the original's for a forward) and
// how it was sent. Edits (of a live location) are live.
func locationInput(m *models.Message, edited bool) fieldops.LocationInput {
	l := m.Location
	in := fieldops.LocationInput{}
	if m.Venue != nil {
		l, in.Venue = &m.Venue.Location, true
	}
	if l == nil {
		return in
	}
	in.Lat, in.Lng = l.Latitude, l.Longitude
	in.Live = edited || l.LivePeriod > 0
	if l.HorizontalAccuracy > 0 {
		a := l.HorizontalAccuracy
		in.AccuracyM = &a
	}
	at := m.Date
	if edited && m.EditDate != 0 {
		at = m.EditDate
	}
	if m.ForwardOrigin != nil {
		in.Forwarded = true
		if d := originDate(m.ForwardOrigin); d != 0 {
			at = d
		}
	}
	if at > 0 {
		in.MessageAt = time.Unix(int64(at), 0).UTC()
	}
	return in
}

func originDate(o *models.MessageOrigin) int {
	switch {
	case o.MessageOriginUser != nil:
		return o.MessageOriginUser.Date
	case o.MessageOriginHiddenUser != nil:
		return o.MessageOriginHiddenUser.Date
	case o.MessageOriginChat != nil:
		return o.MessageOriginChat.Date
	case o.MessageOriginChannel != nil:
		return o.MessageOriginChannel.Date
	}
	return 0
}

// checkInOut checks the member in to or out of the job with the
// location. The answer edits questionMsgID when it is not 0, else it is
// sent (removing the location keyboard); the card cardMsgID, if known, is
// redrawn.
func (t *turn) checkInOut(kind string, jobID int64, in fieldops.LocationInput, cardMsgID, questionMsgID int) {
	var (
		e   *fieldops.TimeEntry
		err error
	)
	if kind == stateCheckIn {
		e, err = t.b.svc.Field.CheckIn(t.ctx, jobID, in)
	} else {
		e, err = t.b.svc.Field.CheckOut(t.ctx, jobID, in)
	}
	switch {
	case err == nil:
	case fieldops.ErrorCode(err) == fieldops.EINVALID && questionMsgID == 0:
		// A location the service cannot take: the question stands.
		t.send(fieldops.ErrorMessage(err), nil)
		return
	case isRefusal(err) && fieldops.ErrorCode(err) != fieldops.EUNAUTHORIZED:
		if !t.setState(fieldops.ChatState{}) {
			return
		}
		t.send(fieldops.ErrorMessage(err), removeKeyboard())
		return
	default:
		t.refused(err)
		return
	}
	if !t.setState(fieldops.ChatState{}) {
		return
	}
	text := checkedText(kind, e, t.zone())
	if questionMsgID != 0 {
		t.edit(questionMsgID, text, nil)
	} else {
		t.send(text, removeKeyboard())
	}
	if cardMsgID != 0 {
		t.showCard(jobID, cardMsgID)
	}
}

// checkedText is the short answer to a check-in or check-out, with a
// warning line when the location was flagged.
func checkedText(kind string, e *fieldops.TimeEntry, loc *time.Location) string {
	at, ev, verb := e.CheckInAt, e.In, "Checked in"
	if kind == stateCheckOut && e.CheckOutAt != nil {
		at, ev, verb = *e.CheckOutAt, e.Out, "Checked out"
	}
	s := fmt.Sprintf("%s at %s", verb, at.In(loc).Format("15:04"))
	if ev.DistanceM != nil {
		s += " — " + fmtDistance(*ev.DistanceM) + " from site"
	}
	s += "."
	if kind == stateCheckOut && e.CheckOutAt != nil {
		s += fmt.Sprintf(" %s on site.", fmtMinutes(e.Minutes(*e.CheckOutAt)))
	}
	if w := warningText(ev, at); w != "" {
		s += "\n" + w
	}
	return s
}

// warningText says why a location will be looked at twice, or "".
func warningText(ev fieldops.LocationEvidence, at time.Time) string {
	var parts []string
	for _, f := range ev.Warnings() {
		switch f {
		case fieldops.LocationOffSite:
			if ev.DistanceM != nil {
				parts = append(parts, fmtDistance(*ev.DistanceM)+" from the site")
			} else {
				parts = append(parts, "away from the site")
			}
		case fieldops.LocationForwarded:
			parts = append(parts, "a forwarded location")
		case fieldops.LocationStale:
			if ev.MessageAt != nil && at.Sub(*ev.MessageAt) >= time.Minute {
				parts = append(parts, fmt.Sprintf("a location %s old", fmtMinutes(int(at.Sub(*ev.MessageAt)/time.Minute))))
			} else {
				parts = append(parts, "an old location")
			}
		case fieldops.LocationPoorAccuracy:
			if ev.AccuracyM != nil {
				parts = append(parts, fmt.Sprintf("poor GPS accuracy (±%s)", fmtDistance(*ev.AccuracyM)))
			} else {
				parts = append(parts, "poor GPS accuracy")
			}
		case fieldops.LocationVenue:
			parts = append(parts, "a place picked from a list, not your GPS position")
		default:
			parts = append(parts, strings.ReplaceAll(f, "_", " "))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	s := strings.Join(parts, "; ")
	return "⚠ " + strings.ToUpper(s[:1]) + s[1:] + ": your manager will see this."
}

// askWhichJob answers a location nobody asked for: it is kept, and the
// member chooses what it is for. Nothing is done until they do.
func (t *turn) askWhichJob(in fieldops.LocationInput) {
	entries, err := t.b.svc.Field.OpenEntries(t.ctx)
	if t.refused(err) {
		return
	}
	var rows [][]models.InlineKeyboardButton
	open := map[int64]bool{}
	for _, e := range entries {
		open[e.JobID] = true
		rows = append(rows, []models.InlineKeyboardButton{button(truncate("Check out: "+t.jobTitle(e.JobID), 48), jobData(verbLocOut, e.JobID))})
	}
	jobs, ok := t.todaysJobs()
	if !ok {
		return
	}
	for _, j := range jobs {
		if !open[j.ID] {
			rows = append(rows, []models.InlineKeyboardButton{button(truncate("Check in: "+j.Title, 48), jobData(verbLocIn, j.ID))})
		}
	}
	if len(rows) == 0 {
		t.send("No job to check in to today. Open the job with /week, tap Check in, then send your location.", removeKeyboard())
		return
	}
	if len(rows) > 8 {
		rows = rows[:8]
	}
	if !t.setState(fieldops.ChatState{Kind: stateLocation, Data: encodeLocation(in)}) {
		return
	}
	t.send("Which job is this location for?", &models.InlineKeyboardMarkup{InlineKeyboard: rows})
}

// useSentLocation answers the "which job?" question with the location
// that was kept.
func (t *turn) useSentLocation(kind string, jobID int64, msgID int) {
	s, ok := t.state()
	if !ok {
		return
	}
	if s.Kind != stateLocation {
		t.sendOrEdit(msgID, "That location has expired. Open the job, tap Check in and send it again.", nil)
		return
	}
	t.checkInOut(kind, jobID, decodeLocation(s.Data), 0, msgID)
}

// encodeLocation keeps a location in a chat state.
func encodeLocation(in fieldops.LocationInput) map[string]any {
	d := map[string]any{"lat": in.Lat, "lng": in.Lng, "fwd": in.Forwarded, "venue": in.Venue, "live": in.Live}
	if in.AccuracyM != nil {
		d["acc"] = *in.AccuracyM
	}
	if !in.MessageAt.IsZero() {
		d["at"] = in.MessageAt.Unix()
	}
	if !in.ReceivedAt.IsZero() {
		d["rcv"] = in.ReceivedAt.Unix()
	}
	return d
}

func decodeLocation(d map[string]any) fieldops.LocationInput {
	in := fieldops.LocationInput{Lat: floatData(d, "lat"), Lng: floatData(d, "lng"),
		Forwarded: boolData(d, "fwd"), Venue: boolData(d, "venue"), Live: boolData(d, "live")}
	if _, ok := d["acc"]; ok {
		a := floatData(d, "acc")
		in.AccuracyM = &a
	}
	if at := intData(d, "at"); at != 0 {
		in.MessageAt = time.Unix(int64(at), 0).UTC()
	}
	if at := intData(d, "rcv"); at != 0 {
		in.ReceivedAt = time.Unix(int64(at), 0).UTC()
	}
	return in
}

// floatData reads a number from chat state data, whichever way it was
// decoded.
func floatData(d map[string]any, k string) float64 {
	switch v := d[k].(type) {
	case float64:
		return v
	case float32:
		return float64(v)
	case int:
		return float64(v)
	case int64:
		return float64(v)
	case json.Number:
		f, _ := v.Float64()
		return f
	}
	return 0
}

func intData(d map[string]any, k string) int {
	switch v := d[k].(type) {
	case int:
		return v
	case int64:
		return int(v)
	case json.Number:
		n, _ := v.Int64()
		return int(n)
	}
	return int(floatData(d, k))
}

func boolData(d map[string]any, k string) bool {
	b, _ := d[k].(bool)
	return b
}

func stringData(d map[string]any, k string) string {
	s, _ := d[k].(string)
	return s
}
