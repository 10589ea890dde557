package bot_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/bot/telegramtest"
)

// chatJPEG is a small JPEG of one colour (a different picture per seed).
func chatJPEG(t *testing.T, seed int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	c := color.RGBA{R: uint8(seed * 40), G: uint8(255 - seed*30), B: uint8(seed * 7), A: 255}
	for y := range 48 {
		for x := range 64 {
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// chatWithEXIF inserts an APP1 (EXIF) segment after the JPEG's SOI, as a
// camera writes one.
func chatWithEXIF(data []byte) []byte {
	payload := append([]byte("Exif\x00\x00"), []byte("MM\x00\x2a\x00\x00\x00\x08 GPS 53.4794 -2.2453 2026:12:01 08:15:00")...)
	seg := []byte{0xff, 0xe1, byte((len(payload) + 2) >> 8), byte(len(payload) + 2)}
	out := append([]byte{}, data[:2]...)
	out = append(out, seg...)
	out = append(out, payload...)
	return append(out, data[2:]...)
}

// chatStoredPhoto returns the stored photo rows' hashes for a job.
func (h *chatHarness) photoHashes(jobID int64) []string {
	h.t.Helper()
	rows, err := h.pool.Query(context.Background(), `SELECT sha256 FROM photos WHERE job_id = $1 ORDER BY id`, jobID)
	if err != nil {
		h.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v any
		if err := rows.Scan(&v); err != nil {
			h.t.Fatal(err)
		}
		switch s := v.(type) {
		case []byte:
			out = append(out, hex.EncodeToString(s))
		default:
			out = append(out, fmt.Sprint(s))
		}
	}
	if err := rows.Err(); err != nil {
		h.t.Fatal(err)
	}
	return out
}

func TestMediaPhotoToJob(t *testing.T) {
	h := newChatHarness(t, chatOptions{})
	eng, u := h.linked(fieldops.RoleEngineer)
	first := h.job("Flat 1 EICR", h.today(0, 1), h.today(23, 59), eng)
	second := h.job("Flat 2 EICR", h.today(0, 2), h.today(23, 59), eng)
	card := h.openCard(u, second.ID)

	t.Run("ReplyToCard", func(t *testing.T) {
		msgs := h.act(u, func() { h.srv.SendPhoto(u, chatJPEG(t, 1), "consumer unit", card.MessageID) })
		if len(msgs) != 1 || msgs[0].Text != "Photo saved to Flat 2 EICR." {
			t.Fatalf("got %q", chatTexts(msgs))
		}
		if n := len(h.photoHashes(second.ID)); n != 1 {
			t.Errorf("%d photos on the job", n)
		}
		if n := h.count(`SELECT count(*) FROM notes WHERE job_id = $1 AND body = 'consumer unit'`, second.ID); n != 1 {
			t.Errorf("caption not kept as a note (%d)", n)
		}
	})
	t.Run("SameAgain", func(t *testing.T) {
		msgs := h.act(u, func() { h.srv.SendPhoto(u, chatJPEG(t, 1), "", card.MessageID) })
		if len(msgs) != 1 || msgs[0].Text != "Already saved." {
			t.Fatalf("got %q", chatTexts(msgs))
		}
	})
	t.Run("NoJobAsks", func(t *testing.T) {
		msgs := h.act(u, func() { h.srv.SendPhoto(u, chatJPEG(t, 2), "", 0) })
		if len(msgs) != 1 || msgs[0].Text != "Which job is this photo for?" {
			t.Fatalf("got %q", chatTexts(msgs))
		}
		if n := len(h.photoHashes(first.ID)); n != 0 {
			t.Fatalf("a photo was filed before the choice")
		}
		var data string
		for _, d := range msgs[0].Markup.CallbackData() {
			if d == fmt.Sprintf("j:pj:%d", first.ID) {
				data = d
			}
		}
		if data == "" {
			t.Fatalf("no button for the first job: %v", msgs[0].Markup.CallbackData())
		}
		h.press(u, msgs[0].MessageID, data)
		if got := h.message(u, msgs[0].MessageID); got.Text != "Photo saved to Flat 1 EICR." {
			t.Errorf("answer %q", got.Text)
		}
		if n := len(h.photoHashes(first.ID)); n != 1 {
			t.Errorf("%d photos on the chosen job", n)
		}
	})
	t.Run("WhileCheckedIn", func(t *testing.T) {
		firstCard := h.openCard(u, first.ID)
		h.checkIn(u, firstCard, first.ID, chatSite)
		msgs := h.act(u, func() { h.srv.SendPhoto(u, chatJPEG(t, 3), "", 0) })
		if len(msgs) != 1 || msgs[0].Text != "Photo saved to Flat 1 EICR." {
			t.Fatalf("got %q", chatTexts(msgs))
		}
		// Text while checked in is a note on the job.
		msgs = h.act(u, func() { h.srv.SendText(u, "Meter cupboard locked") })
		if len(msgs) != 1 || msgs[0].Text != "Noted on Flat 1 EICR." {
			t.Fatalf("note: %q", chatTexts(msgs))
		}
	})
}

func TestMediaDocumentKeepsBytes(t *testing.T) {
	h := newChatHarness(t, chatOptions{})
	eng, u := h.linked(fieldops.RoleEngineer)
	j := h.job("EICR", h.today(0, 1), h.today(23, 59), eng)
	card := h.openCard(u, j.ID)
	h.press(u, card.MessageID, fmt.Sprintf("j:ph:%d", j.ID)) // photos go to this job now

	data := chatWithEXIF(chatJPEG(t, 4))
	msgs := h.act(u, func() { h.srv.SendDocument(u, data, "IMG_0001.jpg", "image/jpeg", telegramtest.Caption("board")) })
	if len(msgs) != 1 || msgs[0].Text != "Photo saved to EICR." {
		t.Fatalf("got %q", chatTexts(msgs))
	}
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	if got := h.photoHashes(j.ID); len(got) != 1 || got[0] != want {
		t.Fatalf("stored hashes %v, want %s", got, want)
	}
	onDisk, err := os.ReadFile(filepath.Join(h.photoDir, want[0:2], want[2:4], want))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, data) {
		t.Error("the file on disk differs from the document sent")
	}

	t.Run("NotAnImage", func(t *testing.T) {
		msgs := h.act(u, func() { h.srv.SendDocument(u, []byte("%PDF-1.4"), "report.pdf", "application/pdf") })
		if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "photos and image files only") {
			t.Fatalf("got %q", chatTexts(msgs))
		}
	})
}

func TestMediaTooBig(t *testing.T) {
	h := newChatHarness(t, chatOptions{server: []telegramtest.Option{telegramtest.WithMaxDownloadSize(512)}})
	eng, u := h.linked(fieldops.RoleEngineer)
	j := h.job("EICR", h.today(0, 1), h.today(23, 59), eng)
	card := h.openCard(u, j.ID)
	msgs := h.act(u, func() {
		h.srv.SendDocument(u, chatWithEXIF(chatJPEG(t, 5)), "big.jpg", "image/jpeg", telegramtest.ReplyTo(card.MessageID))
	})
	if len(msgs) != 1 || msgs[0].Text != "That file is over 20 MB; send it as a photo instead." {
		t.Fatalf("got %q", chatTexts(msgs))
	}
	if n := len(h.photoHashes(j.ID)); n != 0 {
		t.Errorf("%d photos stored", n)
	}
}

func TestMediaWaitingPhotosCapped(t *testing.T) {
	h := newChatHarness(t, chatOptions{})
	eng, u := h.linked(fieldops.RoleEngineer)
	j := h.job("Flat 5 EICR", h.today(0, 1), h.today(23, 59), eng)

	// No card, no job in hand, not checked in: each photo waits for the
	// job to be chosen.
	var question telegramtest.SentMessage
	for i := range 10 {
		msgs := h.act(u, func() { h.srv.SendPhoto(u, chatJPEG(t, 20+i), "", 0) })
		if len(msgs) != 1 || !strings.HasPrefix(msgs[0].Text, "Which job") {
			t.Fatalf("photo %d: got %q", i+1, chatTexts(msgs))
		}
		question = msgs[0]
	}
	if question.Text != "Which job are these 10 photos for?" {
		t.Errorf("last question %q", question.Text)
	}
	msgs := h.act(u, func() { h.srv.SendPhoto(u, chatJPEG(t, 40), "", 0) })
	if len(msgs) != 1 || msgs[0].Text != "10 photos are waiting already: choose their job first, then send this one again." {
		t.Fatalf("11th photo: got %q", chatTexts(msgs))
	}
	st, err := h.tgsvc.ChatState(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if files, _ := st.Data["files"].([]any); len(files) != 10 {
		t.Fatalf("%d file ids kept, want 10", len(files))
	}

	// Choosing the job saves the ten.
	h.press(u, question.MessageID, fmt.Sprintf("j:pj:%d", j.ID))
	if got := h.message(u, question.MessageID); got.Text != "10 photos saved to Flat 5 EICR." {
		t.Errorf("answer %q", got.Text)
	}
	if n := len(h.photoHashes(j.ID)); n != 10 {
		t.Errorf("%d photos on the job, want 10", n)
	}
}

// TestMediaDownloadsBeforeWrites: while a photo downloads, the update has
// written nothing, so the organisation's row (which every write locks
// until the update commits) is free for its other writers.
func TestMediaDownloadsBeforeWrites(t *testing.T) {
	h := newChatHarness(t, chatOptions{})
	eng, u := h.linked(fieldops.RoleEngineer)
	j := h.job("Flat 6 EICR", h.today(0, 1), h.today(23, 59), eng)
	var question telegramtest.SentMessage
	for i := range 2 {
		question = h.act(u, func() { h.srv.SendPhoto(u, chatJPEG(t, 50+i), "", 0) })[0]
	}

	downloads := len(h.srv.RequestsFor("file"))
	h.srv.DelayNext("file", 0)             // the first photo at once,
	h.srv.DelayNext("file", 3*time.Second) // the second slowly
	want := h.settled() + 1
	if _, err := h.srv.PressButton(u, question.MessageID, fmt.Sprintf("j:pj:%d", j.ID)); err != nil {
		t.Fatal(err)
	}
	h.waitUntil("the first photo to be downloaded", func() bool { return len(h.srv.RequestsFor("file")) > downloads })
	// Time for a first AddPhoto, had it come before the second download.
	time.Sleep(700 * time.Millisecond)

	ctx := context.Background()
	tx, err := h.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '1s'`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM organisations WHERE id = $1 FOR NO KEY UPDATE`, h.orgID); err != nil {
		t.Fatalf("the organisation was locked while a photo downloaded: %v", err)
	}
	if len(h.srv.RequestsFor("file")) != downloads+1 {
		t.Fatal("the second download ended before the organisation was tried: the test proves nothing")
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	h.waitUntil("the photos to be saved", func() bool { return h.settled() >= want })
	if got := h.message(u, question.MessageID); got.Text != "2 photos saved to Flat 6 EICR." {
		t.Errorf("answer %q", got.Text)
	}
	if n := len(h.photoHashes(j.ID)); n != 2 {
		t.Errorf("%d photos on the job, want 2", n)
	}
}
