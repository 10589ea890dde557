package bot

import (
	"fmt"
	"slices"

	"github.com/go-telegram/bot/models"

	"github.com/fieldops/fieldops"
)

// The card's other buttons: Log defect, Complete and Certificate. Each
// picker replaces the card's keyboard (Back restores it); the service
// decides the action itself.

// defectMeanings are the EICR observation codes in a line each.
var defectMeanings = []struct{ code, meaning string }{
	{"C1", "danger present"},
	{"C2", "potentially dangerous"},
	{"C3", "improvement recommended"},
	{"FI", "further investigation"},
}

// pickDefectCode answers Log defect: the card offers the codes.
func (t *turn) pickDefectCode(jobID int64, msgID int) {
	job, err := t.b.svc.Jobs.FindJobByID(t.ctx, jobID)
	if t.refused(err) {
		return
	}
	rows := make([][]models.InlineKeyboardButton, 0, len(defectMeanings)+1)
	for _, d := range defectMeanings {
		rows = append(rows, []models.InlineKeyboardButton{button(d.code+" "+d.meaning, jobData(verbDefectCode, job.ID, d.code))})
	}
	rows = append(rows, []models.InlineKeyboardButton{button("Back", jobData(verbRefresh, job.ID))})
	t.pickerOnCard(msgID, "Which code? ("+job.Title+")", &models.InlineKeyboardMarkup{InlineKeyboard: rows})
}

// pickerOnCard swaps the card's keyboard for a picker, or sends the picker
// when the card is not known.
func (t *turn) pickerOnCard(msgID int, text string, kb *models.InlineKeyboardMarkup) {
	if msgID != 0 {
		t.editMarkup(msgID, kb)
		return
	}
	t.send(text, kb)
}

// askDefectDescription answers a code: the next text is the description.
func (t *turn) askDefectDescription(jobID int64, code string, msgID int) {
	if !slices.Contains(fieldops.DefectCodes, code) {
		t.send("That button is out of date. Open the job again and tap Log defect.", nil)
		return
	}
	job, err := t.b.svc.Jobs.FindJobByID(t.ctx, jobID)
	if t.refused(err) {
		return
	}
	if !t.setState(fieldops.ChatState{Kind: stateDefectDescription, JobID: jobID, Data: map[string]any{"code": code}}) {
		return
	}
	if msgID != 0 {
		t.showCard(jobID, msgID)
	}
	t.send(fmt.Sprintf("%s on %s: type what you found, in one message.", code, job.Title),
		&models.ReplyKeyboardMarkup{Keyboard: [][]models.KeyboardButton{{{Text: "Cancel"}}}, ResizeKeyboard: true})
}

// logDefect takes the description of the pending defect.
func (t *turn) logDefect(s fieldops.ChatState, text string) {
	code := stringData(s.Data, "code")
	d, err := t.b.svc.Defects.LogDefect(t.ctx, s.JobID, code, text, "")
	switch {
	case err == nil:
	case fieldops.ErrorCode(err) == fieldops.EINVALID && fieldops.ErrorField(err) == "description":
		t.send(fieldops.ErrorMessage(err), nil) // the question stands
		return
	case isRefusal(err) && fieldops.ErrorCode(err) != fieldops.EUNAUTHORIZED:
		if t.setState(fieldops.ChatState{}) {
			t.send(fieldops.ErrorMessage(err), removeKeyboard())
		}
		return
	default:
		t.refused(err)
		return
	}
	// Photos sent next go to the same job.
	if !t.setState(fieldops.ChatState{Kind: statePhotos, JobID: s.JobID}) {
		return
	}
	msg := fmt.Sprintf("%s logged on %s.", d.Code, t.jobTitle(s.JobID))
	if d.Code == "C1" {
		msg = "C1 logged. Your managers have been alerted."
	}
	t.send(msg+"\nSend photos of it now if you can.", removeKeyboard())
}

// confirmComplete answers Complete: a mis-tap must not complete a job.
func (t *turn) confirmComplete(jobID int64, msgID int) {
	job, err := t.b.svc.Jobs.FindJobByID(t.ctx, jobID)
	if t.refused(err) {
		return
	}
	t.pickerOnCard(msgID, "Complete "+job.Title+"?", inline(
		[]models.InlineKeyboardButton{button("Yes, complete", jobData(verbCompleteYes, job.ID)), button("Back", jobData(verbRefresh, job.ID))},
	))
}

// complete completes the job and redraws its card.
func (t *turn) complete(jobID int64, msgID int) {
	job, err := t.b.svc.Field.CompleteJob(t.ctx, jobID)
	if t.refused(err) {
		if msgID != 0 && isRefusal(err) && fieldops.ErrorCode(err) != fieldops.EUNAUTHORIZED &&
			fieldops.ErrorCode(err) != fieldops.ENOTFOUND {
			t.showCard(jobID, msgID)
		}
		return
	}
	if msgID != 0 {
		t.showCard(jobID, msgID)
	}
	t.send("Completed: "+job.Title+".", nil)
}

// pickCertificateType answers Certificate: the card offers the types, the
// job's own first.
func (t *turn) pickCertificateType(jobID int64, msgID int) {
	job, err := t.b.svc.Jobs.FindJobByID(t.ctx, jobID)
	if t.refused(err) {
		return
	}
	types := slices.Clone(fieldops.CertificateTypes)
	if i := slices.Index(types, job.Type); i > 0 {
		types = slices.Insert(slices.Delete(types, i, i+1), 0, job.Type)
	}
	var rows [][]models.InlineKeyboardButton
	for i := 0; i < len(types); i += 2 {
		row := []models.InlineKeyboardButton{button(certTypeLabel(types[i]), jobData(verbCertType, job.ID, types[i]))}
		if i+1 < len(types) {
			row = append(row, button(certTypeLabel(types[i+1]), jobData(verbCertType, job.ID, types[i+1])))
		}
		rows = append(rows, row)
	}
	rows = append(rows, []models.InlineKeyboardButton{button("Back", jobData(verbRefresh, job.ID))})
	t.pickerOnCard(msgID, "Which certificate? ("+job.Title+")", &models.InlineKeyboardMarkup{InlineKeyboard: rows})
}

// createCertificate starts a draft of the chosen type.
func (t *turn) createCertificate(jobID int64, typ string, msgID int) {
	c, err := t.b.svc.Certificates.CreateCertificate(t.ctx, jobID, typ)
	if t.refused(err) {
		return
	}
	if msgID != 0 {
		t.showCard(jobID, msgID)
	}
	t.send(fmt.Sprintf("%s draft started for %s. Fill it in and submit it from the web panel.", certTypeLabel(c.Type), t.jobTitle(jobID)), nil)
}
