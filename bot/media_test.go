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
