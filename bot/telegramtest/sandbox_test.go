package telegramtest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/bot/telegramtest"
)

// TestSandbox: the server as the admin panel's fieldops.Sandbox.
func TestSandbox(t *testing.T) {
	srv := telegramtest.New(t, telegramtest.WithoutLimits())
	sb := srv.Sandbox()
	b := newBot(t, srv)
	ctx := context.Background()
	sam := fieldops.SandboxUser{ID: 7_000_000_042, Name: "Sam", Username: "@sam_sparks"}

	if h := sb.History(sam.ID); h != nil {
		t.Fatalf("history before any message = %+v", h)
	}
	if err := sb.SendText(sam, "/start tok_123"); err != nil {
		t.Fatal(err)
	}
	if us := srv.Users(); len(us) != 1 || us[0].ID != sam.ID || us[0].FirstName != "Sam" || us[0].Username != "sam_sparks" {
		t.Fatalf("users = %+v", us)
	}
	if m := srv.History(sam.ID); srv.Pending() != 1 || len(m) != 1 || m[0].Text != "/start tok_123" || m[0].From.ID != sam.ID {
		t.Fatalf("%d pending, history %+v", srv.Pending(), m)
	}

	card, err := b.SendMessage(ctx, &bot.SendMessageParams{ChatID: sam.ID, Text: "EICR at 10:00",
		ReplyMarkup: &models.InlineKeyboardMarkup{InlineKeyboard: [][]models.InlineKeyboardButton{{
			{Text: "Check in", CallbackData: "job:checkin:1"}, {Text: "Map", URL: "https://maps.example/?q=51.5,-0.12"},
		}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.SendMessage(ctx, &bot.SendMessageParams{ChatID: sam.ID, Text: "Share your location.",
		ReplyMarkup: &models.ReplyKeyboardMarkup{Keyboard: [][]models.KeyboardButton{{{Text: "Share location", RequestLocation: true}}, {{Text: "Cancel"}}}}}); err != nil {
		t.Fatal(err)
	}
	h := sb.History(sam.ID)
	if len(h) != 3 || h[0].FromBot || !h[1].FromBot || h[1].Text != "EICR at 10:00" {
		t.Fatalf("history = %+v", h)
	}
	if bs := h[1].Buttons; len(bs) != 1 || len(bs[0]) != 2 || bs[0][0] != (fieldops.SandboxButton{Text: "Check in", Data: "job:checkin:1"}) ||
		bs[0][1].URL != "https://maps.example/?q=51.5,-0.12" {
		t.Fatalf("buttons = %+v", h[1].Buttons)
	}
	if k := sb.Keyboard(sam.ID); len(k) != 2 || !k[0][0].RequestLocation || k[1][0] != (fieldops.SandboxKey{Text: "Cancel"}) {
		t.Fatalf("keyboard = %+v", k)
	}

	// A press, its answer, and the edit that takes the button away.
	if err := sb.PressButton(sam, card.ID, "job:checkin:1"); err != nil {
		t.Fatal(err)
	}
	cb := srv.Callbacks()[0]
	if _, err := b.AnswerCallbackQuery(ctx, &bot.AnswerCallbackQueryParams{CallbackQueryID: cb.ID, Text: "Checked in"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.EditMessageText(ctx, &bot.EditMessageTextParams{ChatID: sam.ID, MessageID: card.ID, Text: "EICR at 10:00: checked in"}); err != nil {
		t.Fatal(err)
	}
	h = sb.History(sam.ID)
	if c := h[1]; c.Answer != "Checked in" || !c.Edited || c.Buttons != nil || c.Text != "EICR at 10:00: checked in" {
		t.Fatalf("card after the press = %+v", c)
	}
	if err := sb.PressButton(sam, card.ID, "job:checkin:1"); fieldops.ErrorCode(err) != fieldops.EINVALID {
		t.Fatalf("press a button that is gone: %v", err)
	}

	// Location and photo.
	if err := sb.SendLocation(sam, 53.4776, -2.2367, 12); err != nil {
		t.Fatal(err)
	}
	if err := sb.SendPhoto(sam, []byte("\xff\xd8\xff\xe0 a jpeg, roughly"), "meter cupboard"); err != nil {
		t.Fatal(err)
	}
	h = sb.History(sam.ID)
	if l := h[3].Location; l == nil || *l != (fieldops.SandboxLocation{Latitude: 53.4776, Longitude: -2.2367, AccuracyM: 12}) {
		t.Fatalf("location = %+v", h[3])
	}
	if p := h[4]; !p.Photo || p.Text != "meter cupboard" || p.FromBot {
		t.Fatalf("photo = %+v", p)
	}

	// A deleted message is left out.
	if _, err := b.DeleteMessage(ctx, &bot.DeleteMessageParams{ChatID: sam.ID, MessageID: h[2].ID}); err != nil {
		t.Fatal(err)
	}
	if n := len(sb.History(sam.ID)); n != 4 {
		t.Fatalf("%d messages after a deletion, want 4", n)
	}
}

// TestSandboxInvalid: input Telegram would not let through is EINVALID,
// and nothing is sent.
func TestSandboxInvalid(t *testing.T) {
	srv := telegramtest.New(t)
	sb := srv.Sandbox()
	u := fieldops.SandboxUser{ID: 99, Name: "Sam"}
	for name, err := range map[string]error{
		"NoUser":       sb.SendText(fieldops.SandboxUser{}, "hi"),
		"EmptyText":    sb.SendText(u, "  "),
		"LongText":     sb.SendText(u, strings.Repeat("a", telegramtest.MaxMessageLength+1)),
		"Latitude":     sb.SendLocation(u, 91, 0, 0),
		"Longitude":    sb.SendLocation(u, 0, -181, 0),
		"Accuracy":     sb.SendLocation(u, 0, 0, 1501),
		"NoPhoto":      sb.SendPhoto(u, nil, ""),
		"HugePhoto":    sb.SendPhoto(u, make([]byte, telegramtest.MaxSandboxUpload+1), ""),
		"LongCaption":  sb.SendPhoto(u, []byte("x"), strings.Repeat("a", telegramtest.MaxCaptionLength+1)),
		"NoSuchButton": sb.PressButton(u, 1, "job:checkin:1"),
	} {
		if fieldops.ErrorCode(err) != fieldops.EINVALID || fieldops.ErrorMessage(err) == "" {
			t.Errorf("%s: %v, want EINVALID with a message", name, err)
		}
	}
	if n := srv.Pending(); n != 0 {
		t.Fatalf("%d updates sent anyway", n)
	}
}
