package telegramtest_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"github.com/fieldops/fieldops/bot/telegramtest"
)

func makeJPEG(tb testing.TB, w, h int) []byte {
	tb.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 90, 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func download(tb testing.TB, link string) (int, []byte) {
	tb.Helper()
	resp, err := http.Get(link)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, body
}

func TestFiles(t *testing.T) {
	srv := telegramtest.New(t)
	alice := srv.NewUser("Alice", "alice")
	b := newBot(t, srv)
	ctx := context.Background()
	photo := makeJPEG(t, 1200, 900)

	t.Run("OKPhotoSizesAndDownload", func(t *testing.T) {
		card := srv.SendText(alice, "job card stand-in")
		upd := srv.SendPhoto(alice, photo, "meter cupboard", card.Message.ID)
		m := upd.Message
		if m.Caption != "meter cupboard" || m.ReplyToMessage == nil || m.ReplyToMessage.ID != card.Message.ID {
			t.Fatalf("message = %+v", m)
		}
		if len(m.Photo) != 4 || m.Photo[0].Width != 90 || m.Photo[3].Width != 1200 || m.Photo[3].Height != 900 {
			t.Fatalf("sizes = %+v", m.Photo)
		}
		largest := m.Photo[len(m.Photo)-1]
		f, err := b.GetFile(ctx, &bot.GetFileParams{FileID: largest.FileID})
		if err != nil {
			t.Fatal(err)
		}
		status, body := download(t, b.FileDownloadLink(f))
		if status != 200 || !bytes.Equal(body, photo) || f.FileSize != int64(len(photo)) {
			t.Fatalf("download: status %d, %d bytes, want %d", status, len(body), len(photo))
		}
		thumb, err := b.GetFile(ctx, &bot.GetFileParams{FileID: m.Photo[0].FileID})
		if err != nil {
			t.Fatal(err)
		}
		_, body = download(t, b.FileDownloadLink(thumb))
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(body))
		if err != nil || cfg.Width != 90 {
			t.Fatalf("thumbnail: %+v, %v", cfg, err)
		}
	})

	t.Run("OKDocumentKeepsBytes", func(t *testing.T) {
		original := append([]byte("\xff\xd8\xff\xe1\x00\x10Exif\x00\x00GPS..."), photo...)
		upd := srv.SendDocument(alice, original, "IMG_0001.jpg", "image/jpeg", telegramtest.Caption("as a file"))
		d := upd.Message.Document
		if d.FileName != "IMG_0001.jpg" || d.MimeType != "image/jpeg" || d.FileSize != int64(len(original)) || upd.Message.Caption != "as a file" {
			t.Fatalf("document = %+v", d)
		}
		f, err := b.GetFile(ctx, &bot.GetFileParams{FileID: d.FileID})
		if err != nil {
			t.Fatal(err)
		}
		if _, body := download(t, b.FileDownloadLink(f)); !bytes.Equal(body, original) {
			t.Fatal("document bytes changed")
		}
	})

	t.Run("OKBotUploadsPhoto", func(t *testing.T) {
		m, err := b.SendPhoto(ctx, &bot.SendPhotoParams{
			ChatID: alice.ChatID(), Caption: "site plan",
			Photo: &models.InputFileUpload{Filename: "plan.jpg", Data: bytes.NewReader(photo)},
		})
		if err != nil {
			t.Fatal(err)
		}
		last, _ := srv.Last(alice.ChatID())
		data, ok := srv.File(last.FileID)
		if len(m.Photo) == 0 || last.Method != "sendPhoto" || last.Text != "site plan" || !ok || !bytes.Equal(data, photo) {
			t.Fatalf("sent photo = %+v", last)
		}
	})

	t.Run("ErrFileTooBig", func(t *testing.T) {
		big := srv.SendDocument(alice, make([]byte, telegramtest.MaxDownloadSize+1), "survey.bin", "application/octet-stream")
		_, err := b.GetFile(ctx, &bot.GetFileParams{FileID: big.Message.Document.FileID})
		if !errors.Is(err, bot.ErrorBadRequest) || !strings.Contains(err.Error(), "file is too big") {
			t.Fatalf("err = %v", err)
		}
		limit := srv.SendDocument(alice, make([]byte, telegramtest.MaxDownloadSize), "limit.bin", "")
		if _, err := b.GetFile(ctx, &bot.GetFileParams{FileID: limit.Message.Document.FileID}); err != nil {
			t.Fatalf("a file of exactly 20 MB: %v", err)
		}
	})

	t.Run("ErrWrongFile", func(t *testing.T) {
		_, err := b.GetFile(ctx, &bot.GetFileParams{FileID: "nope"})
		if !errors.Is(err, bot.ErrorBadRequest) {
			t.Fatalf("err = %v", err)
		}
		if status, _ := download(t, srv.URL()+"/file/bot"+srv.Token()+"/photos/none.jpg"); status != 404 {
			t.Fatalf("unknown path: %d", status)
		}
		if status, _ := download(t, srv.URL()+"/file/bot123456:WRONG/photos/file_1.jpg"); status != 401 {
			t.Fatalf("wrong token: %d", status)
		}
	})
}

func TestLocations(t *testing.T) {
	srv := telegramtest.New(t)
	alice := srv.NewUser("Alice", "alice")
	bob := srv.NewUser("Bob", "bob")
	got := make(chan *models.Update, 10)
	run(t, newBot(t, srv, bot.WithNotAsyncHandlers(), collect(got)))
	now := time.Now()

	srv.SendLocation(alice, 51.5007, -0.1246, telegramtest.Accuracy(12.5))
	live := srv.SendLocation(alice, 51.5, -0.12, telegramtest.LivePeriod(900), telegramtest.Heading(90))
	if _, err := srv.EditLiveLocation(alice, live.Message.ID, 51.501, -0.121, telegramtest.Accuracy(5)); err != nil {
		t.Fatal(err)
	}
	srv.SendLocation(alice, 51.5, -0.12, telegramtest.Forwarded(bob, now.Add(-time.Hour)))
	srv.SendLocation(alice, 51.5, -0.12, telegramtest.Venue("Big Ben", "Westminster, London"))
	srv.SendLocation(alice, 51.5, -0.12, telegramtest.Dated(now.Add(-10*time.Minute)))

	if u := receive(t, got); u.Message.Location.Latitude != 51.5007 || u.Message.Location.HorizontalAccuracy != 12.5 || u.Message.Location.LivePeriod != 0 {
		t.Fatalf("plain: %+v", u.Message.Location)
	}
	if u := receive(t, got); u.Message.Location.LivePeriod != 900 || u.Message.Location.Heading != 90 {
		t.Fatalf("live: %+v", u.Message.Location)
	}
	if u := receive(t, got); u.EditedMessage == nil || u.EditedMessage.ID != live.Message.ID || u.EditedMessage.Location.Latitude != 51.501 ||
		u.EditedMessage.Location.HorizontalAccuracy != 5 || u.EditedMessage.Location.LivePeriod != 900 || u.EditedMessage.EditDate == 0 {
		t.Fatalf("live edit: %+v", u)
	}
	if u := receive(t, got); u.Message.ForwardOrigin == nil || u.Message.ForwardOrigin.Type != models.MessageOriginTypeUser ||
		u.Message.ForwardOrigin.MessageOriginUser.SenderUser.ID != bob.ID || u.Message.ForwardOrigin.MessageOriginUser.Date != int(now.Add(-time.Hour).Unix()) {
		t.Fatalf("forwarded: %+v", u.Message.ForwardOrigin)
	}
	if u := receive(t, got); u.Message.Venue == nil || u.Message.Venue.Title != "Big Ben" || u.Message.Location == nil || u.Message.Venue.Location.Latitude != 51.5 {
		t.Fatalf("venue: %+v", u.Message)
	}
	if u := receive(t, got); u.Message.Date != int(now.Add(-10*time.Minute).Unix()) {
		t.Fatalf("stale: date %d", u.Message.Date)
	}

	t.Run("ErrEditNotLive", func(t *testing.T) {
		plain := srv.SendLocation(alice, 1, 2)
		receive(t, got)
		if _, err := srv.EditLiveLocation(alice, plain.Message.ID, 3, 4); err == nil {
			t.Fatal("edited a location that is not live")
		}
	})
}
