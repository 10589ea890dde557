package bot

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	tgbot "github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"github.com/fieldops/fieldops"
)

const (
	textTooBig   = "That file is over 20 MB; send it as a photo instead."
	textNotImage = "I keep photos and image files only. Send the picture as a photo, or as a file if you want to keep its details."
	textFileGone = "I couldn't fetch that file from Telegram. Please send it again."
)

var (
	errTooBig   = errors.New("file over the download limit")
	errFileGone = errors.New("file not available")
)

// downloadTimeout bounds one file download.
const downloadTimeout = 2 * time.Minute

// maxWaitingPhotos is how many photos the chat state keeps while the
// member says which job they are for; more are refused until they do.
const maxWaitingPhotos = 10

// incomingPhoto is a picture received, kept in the chat state while the
// member says which job it is for.
type incomingPhoto struct {
	FileID  string
	Mime    string // "" for a photo: sniffed from its bytes
	Caption string
	At      int64 // the message's date (Unix seconds)
	Size    int64
}

func (p incomingPhoto) data() map[string]any {
	return map[string]any{"id": p.FileID, "mime": p.Mime, "caption": p.Caption, "at": p.At, "size": p.Size}
}

func photoFromData(v any) (incomingPhoto, bool) {
	d, ok := v.(map[string]any)
	if !ok {
		return incomingPhoto{}, false
	}
	p := incomingPhoto{FileID: stringData(d, "id"), Mime: stringData(d, "mime"), Caption: stringData(d, "caption"),
		At: int64(intData(d, "at")), Size: int64(intData(d, "size"))}
	return p, p.FileID != ""
}

// photoOf reads the picture of a message: the largest size of a photo, or
// a document with an image type, used as sent (it keeps its EXIF).
func photoOf(m *models.Message) (incomingPhoto, bool) {
	p := incomingPhoto{Caption: m.Caption, At: int64(m.Date)}
	switch {
	case len(m.Photo) > 0:
		best := m.Photo[0]
		for _, s := range m.Photo[1:] {
			if s.FileSize > best.FileSize || (s.FileSize == best.FileSize && s.Width*s.Height > best.Width*best.Height) {
				best = s
			}
		}
		p.FileID, p.Size = best.FileID, int64(best.FileSize)
		return p, true
	case m.Document != nil && strings.HasPrefix(strings.ToLower(m.Document.MimeType), "image/"):
		p.FileID, p.Mime, p.Size = m.Document.FileID, strings.ToLower(m.Document.MimeType), m.Document.FileSize
		return p, true
	}
	return p, false
}

// handleMedia files a photo with its job: the card it replies to, the job
// the chat is busy with, or the job the member is checked in on; else it
// is kept and the member asked which job it is for.
func (t *turn) handleMedia(m *models.Message) {
	p, ok := photoOf(m)
	if !ok {
		t.send(textNotImage, nil)
		return
	}
	if p.Size > fieldops.MaxPhotoBytes {
		t.send(textTooBig, nil)
		return
	}
	if r := m.ReplyToMessage; r != nil && r.From != nil && r.From.IsBot {
		if id := jobOfCard(r); id != 0 {
			t.savePhotos(id, []incomingPhoto{p}, 0)
			return
		}
	}
	s, ok := t.state()
	if !ok {
		return
	}
	switch s.Kind {
	case statePhotos, stateCheckIn, stateCheckOut, stateDefectDescription:
		if s.JobID != 0 {
			t.savePhotos(s.JobID, []incomingPhoto{p}, 0)
			return
		}
	case statePhotoJob:
		t.askPhotoJob(s, p, m.MediaGroupID)
		return
	}
	entries, err := t.b.svc.Field.OpenEntries(t.ctx)
	if t.refused(err) {
		return
	}
	if len(entries) == 1 {
		t.savePhotos(entries[0].JobID, []incomingPhoto{p}, 0)
		return
	}
	t.askPhotoJob(fieldops.ChatState{}, p, m.MediaGroupID)
}

// askPhotoJob keeps the photo with any already waiting and asks which job
// they are for (once per album).
func (t *turn) askPhotoJob(s fieldops.ChatState, p incomingPhoto, group string) {
	var files []any
	if s.Kind == statePhotoJob {
		files, _ = s.Data["files"].([]any)
	}
	if len(files) >= maxWaitingPhotos {
		t.send(fmt.Sprintf("%d photos are waiting already: choose their job first, then send this one again.", len(files)), nil)
		return
	}
	files = append(files, p.data())
	sameAlbum := s.Kind == statePhotoJob && group != "" && stringData(s.Data, "group") == group
	if !t.setState(fieldops.ChatState{Kind: statePhotoJob, Data: map[string]any{"files": files, "group": group}}) {
		return
	}
	if sameAlbum {
		return
	}
	jobs, ok := t.todaysJobs()
	if !ok {
		return
	}
	if len(jobs) == 0 {
		t.send("Which job is this photo for? You have no jobs today: open the job with /week and send the photo in reply to its card.", nil)
		return
	}
	rows := make([][]models.InlineKeyboardButton, 0, len(jobs))
	for i, j := range jobs {
		if i == 8 {
			break
		}
		rows = append(rows, []models.InlineKeyboardButton{button(truncate(fmtWindow(j.ScheduledStart, j.ScheduledEnd, t.zone(), false)+" "+j.Title, 48), jobData(verbPhotoJob, j.ID))})
	}
	q := "Which job is this photo for?"
	if len(files) > 1 {
		q = fmt.Sprintf("Which job are these %d photos for?", len(files))
	}
	t.send(q, &models.InlineKeyboardMarkup{InlineKeyboard: rows})
}

// attachWaitingPhotos answers "which job is this photo for?".
func (t *turn) attachWaitingPhotos(jobID int64, msgID int) {
	s, ok := t.state()
	if !ok {
		return
	}
	var photos []incomingPhoto
	if s.Kind == statePhotoJob {
		files, _ := s.Data["files"].([]any)
		for _, f := range files {
			if p, ok := photoFromData(f); ok {
				photos = append(photos, p)
			}
		}
	}
	if len(photos) == 0 {
		t.sendOrEdit(msgID, "Those photos are no longer waiting. Send them again in reply to the job card.", nil)
		return
	}
	if !t.savePhotos(jobID, photos, msgID) {
		return
	}
	// Photos sent next go to the same job.
	t.setState(fieldops.ChatState{Kind: statePhotos, JobID: jobID})
}

// askPhotos answers Photos on a card: photos sent next go to this job.
func (t *turn) askPhotos(jobID int64) {
	job, err := t.b.svc.Jobs.FindJobByID(t.ctx, jobID)
	if t.refused(err) {
		return
	}
	if !t.setState(fieldops.ChatState{Kind: statePhotos, JobID: jobID}) {
		return
	}
	t.send(fmt.Sprintf("Send photos for %s now: 📎 then Photo. To keep the photo's time and place details, send it as a File. A caption becomes a note.", job.Title), nil)
}

// savePhotos downloads the photos and adds them to the job; the answer
// edits msgID when it is not 0. It reports whether it got to the end.
//
// Every download comes before the first AddPhoto: a write locks the
// organisation's row until the update commits, and no other writer of
// the organisation should wait on Telegram's file server meanwhile. The
// price is memory: up to maxWaitingPhotos files at once.
func (t *turn) savePhotos(jobID int64, photos []incomingPhoto, msgID int) bool {
	fetched := make([]fieldops.NewPhoto, 0, len(photos))
	for _, p := range photos {
		data, err := t.download(p.FileID)
		switch {
		case errors.Is(err, errTooBig):
			t.send(textTooBig, nil)
			continue
		case errors.Is(err, errFileGone):
			t.send(textFileGone, nil)
			continue
		case err != nil:
			fail(t.ctx, err)
			return false
		}
		ct := p.Mime
		if ct == "" {
			ct = http.DetectContentType(data)
		}
		np := fieldops.NewPhoto{Data: data, ContentType: ct, Caption: p.Caption, TelegramFileID: p.FileID}
		if p.At > 0 {
			at := time.Unix(p.At, 0).UTC()
			np.TakenAt = &at
		}
		fetched = append(fetched, np)
	}
	saved, dup := 0, 0
	for _, np := range fetched {
		_, created, err := t.b.svc.Field.AddPhoto(t.ctx, jobID, np)
		if t.refused(err) {
			return false
		}
		if created {
			saved++
		} else {
			dup++
		}
	}
	if saved+dup == 0 {
		return true
	}
	title := t.jobTitle(jobID)
	var text string
	switch {
	case saved == 0:
		text = "Already saved."
	case saved == 1 && dup == 0:
		text = "Photo saved to " + title + "."
	case dup == 0:
		text = fmt.Sprintf("%d photos saved to %s.", saved, title)
	default:
		text = fmt.Sprintf("%d photos saved to %s (%d already saved).", saved, title, dup)
	}
	t.sendOrEdit(msgID, text, nil)
	return true
}

// download fetches a file the user sent: getFile, then the file itself,
// never more than fieldops.MaxPhotoBytes. errTooBig and errFileGone are
// the user's to know; other errors are ours (retried).
func (t *turn) download(fileID string) ([]byte, error) {
	f, err := t.tg.GetFile(t.ctx, &tgbot.GetFileParams{FileID: fileID})
	if err != nil {
		if errors.Is(err, tgbot.ErrorBadRequest) {
			if strings.Contains(strings.ToLower(err.Error()), "too big") {
				return nil, errTooBig
			}
			return nil, errFileGone
		}
		return nil, fmt.Errorf("getFile: %w", err)
	}
	if f.FileSize > fieldops.MaxPhotoBytes {
		return nil, errTooBig
	}
	if f.FilePath == "" {
		return nil, errFileGone
	}
	req, err := http.NewRequestWithContext(t.ctx, http.MethodGet, t.tg.FileDownloadLink(f), nil)
	if err != nil {
		return nil, fmt.Errorf("download file: %w", redactURL(err))
	}
	hc := &http.Client{Timeout: downloadTimeout}
	if t.b.hc != nil {
		hc.Transport = t.b.hc.Transport
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download file: %w", redactURL(err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusBadRequest:
		return nil, errFileGone
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("download file: status %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, fieldops.MaxPhotoBytes+1))
	if err != nil {
		return nil, fmt.Errorf("download file: %w", redactURL(err))
	}
	if len(data) > fieldops.MaxPhotoBytes {
		return nil, errTooBig
	}
	return data, nil
}

// redactURL keeps the download URL, which holds the bot's token, out of
// an error (and so out of the logs).
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
