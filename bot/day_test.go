package bot_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/bot/telegramtest"
)

// waitText waits until the bot has sent u a message containing s.
func (h *chatHarness) waitText(u *telegramtest.User, s string) telegramtest.SentMessage {
	h.t.Helper()
	var found telegramtest.SentMessage
	h.waitUntil(fmt.Sprintf("%q in chat %d", s, u.ChatID()), func() bool {
		for _, m := range h.srv.Messages(u.ChatID()) {
			if strings.Contains(m.Text, s) {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

// TestDayTwoEngineerEICR is a whole day of a two-engineer EICR, through
// the chat only: both are told of the job, both check in, photos, a C1
// defect and its alert, a certificate draft, both check out, and the
// job's time is the sum of their intervals.
func TestDayTwoEngineerEICR(t *testing.T) {
	h := newChatHarness(t, chatOptions{notify: true})
	day := h.today(0, 0).AddDate(0, 0, 1)
	at := func(hh, mm int) time.Time {
		return time.Date(day.Year(), day.Month(), day.Day(), hh, mm, 0, 0, h.london)
	}
	h.clock.Set(at(7, 30))

	_, um := h.linked(fieldops.RoleManager)
	alice, ua := h.linked(fieldops.RoleEngineer)
	bob, ub := h.linked(fieldops.RoleEngineer)
	j := h.job("Flat 3 EICR", at(8, 0), at(12, 0), alice, bob)

	// Both are told, by Telegram.
	h.waitText(ua, "New job: Flat 3 EICR")
	h.waitText(ub, "New job: Flat 3 EICR")

	// Alice's day list, and the card.
	msgs := h.act(ua, func() { h.srv.SendCommand(ua, "/today", "") })
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "08:00–12:00 Flat 3 EICR") {
		t.Fatalf("/today: %q", chatTexts(msgs))
	}
	cardA := h.press(ua, msgs[0].MessageID, fmt.Sprintf("j:o:%d", j.ID))[0]
	if !strings.Contains(cardA.Text, "(primary)") || !strings.Contains(cardA.Text, "Engineer") {
		t.Errorf("card:\n%s", cardA.Text)
	}

	// Both check in on site.
	h.clock.Set(at(8, 2))
	msgs = h.checkIn(ua, cardA, j.ID, chatOffset(chatSite, 35))
	if len(msgs) != 1 || msgs[0].Text != "Checked in at 08:02 — 35 m from site." {
		t.Fatalf("Alice's check-in: %q", chatTexts(msgs))
	}
	h.clock.Set(at(8, 10))
	cardB := h.openCard(ub, j.ID)
	if !strings.Contains(cardB.Text, "On site: Engineer") {
		t.Errorf("Bob's card does not show Alice on site:\n%s", cardB.Text)
	}
	msgs = h.checkIn(ub, cardB, j.ID, chatOffset(chatSite, 80))
	if len(msgs) != 1 || msgs[0].Text != "Checked in at 08:10 — 80 m from site." {
		t.Fatalf("Bob's check-in: %q", chatTexts(msgs))
	}

	// Photos: Alice replies to her card, Bob sends one while checked in.
	h.clock.Set(at(9, 0))
	if msgs = h.act(ua, func() { h.srv.SendPhoto(ua, chatJPEG(t, 10), "Consumer unit", cardA.MessageID) }); len(msgs) != 1 || msgs[0].Text != "Photo saved to Flat 3 EICR." {
		t.Fatalf("Alice's photo: %q", chatTexts(msgs))
	}
	if msgs = h.act(ub, func() { h.srv.SendPhoto(ub, chatJPEG(t, 11), "", 0) }); len(msgs) != 1 || msgs[0].Text != "Photo saved to Flat 3 EICR." {
		t.Fatalf("Bob's photo: %q", chatTexts(msgs))
	}

	// A C1 defect: the card offers the codes, then asks for the text.
	h.clock.Set(at(10, 15))
	h.press(ua, cardA.MessageID, fmt.Sprintf("j:df:%d", j.ID))
	if got := h.message(ua, cardA.MessageID); !strings.Contains(strings.Join(buttonTexts(got), "|"), "C1 danger present") {
		t.Fatalf("code picker: %v", buttonTexts(got))
	}
	msgs = h.press(ua, cardA.MessageID, fmt.Sprintf("j:dc:%d:C1", j.ID))
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0].Text, "C1 on Flat 3 EICR") {
		t.Fatalf("description question: %q", chatTexts(msgs))
	}
	msgs = h.act(ua, func() { h.srv.SendText(ua, "Exposed live conductors at the kitchen socket") })
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0].Text, "C1 logged. Your managers have been alerted.") {
		t.Fatalf("C1: %q", chatTexts(msgs))
	}
	if n := h.count(`SELECT count(*) FROM notifications WHERE kind = 'defect.c1' AND user_id IN ($1, $2)`, h.ownerID, mustMemberID(t, h, um)); n != 2 {
		t.Errorf("%d C1 alerts for the owner and the manager, want 2", n)
	}
	if n := h.count(`SELECT count(*) FROM notifications WHERE kind = 'defect.c1' AND user_id IN ($1, $2)`, alice, bob); n != 0 {
		t.Errorf("engineers were alerted (%d)", n)
	}
	h.waitText(um, "C1 defect (danger present) on Flat 3 EICR")
	// A photo right after goes to the same job.
	if msgs = h.act(ua, func() { h.srv.SendPhoto(ua, chatJPEG(t, 12), "the socket", 0) }); len(msgs) != 1 || msgs[0].Text != "Photo saved to Flat 3 EICR." {
		t.Fatalf("defect photo: %q", chatTexts(msgs))
	}

	// A certificate draft.
	h.press(ua, cardA.MessageID, fmt.Sprintf("j:ce:%d", j.ID))
	msgs = h.press(ua, cardA.MessageID, fmt.Sprintf("j:ct:%d:eicr", j.ID))
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0].Text, "EICR draft started") {
		t.Fatalf("certificate: %q", chatTexts(msgs))
	}

	// Both check out.
	h.clock.Set(at(12, 0))
	h.press(ua, cardA.MessageID, fmt.Sprintf("j:co:%d", j.ID))
	msgs = h.act(ua, func() { h.srv.SendLocation(ua, chatSite.Lat, chatSite.Lng, telegramtest.Dated(h.clock.Now())) })
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0].Text, "Checked out at 12:00 — 0 m from site.") {
		t.Fatalf("Alice's check-out: %q", chatTexts(msgs))
	}
	h.clock.Set(at(12, 30))
	cardB = h.openCard(ub, j.ID)
	h.press(ub, cardB.MessageID, fmt.Sprintf("j:co:%d", j.ID))
	msgs = h.act(ub, func() { h.srv.SendLocation(ub, chatSite.Lat, chatSite.Lng, telegramtest.Dated(h.clock.Now())) })
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0].Text, "Checked out at 12:30") {
		t.Fatalf("Bob's check-out: %q", chatTexts(msgs))
	}

	// The job's time is both intervals: 3 h 58 + 4 h 20 = 498 minutes.
	ev, err := h.svc.Evidence.FindJobEvidence(h.owner, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Time.Minutes < 496 || ev.Time.Minutes > 498 || len(ev.Time.PerEngineer) != 2 {
		t.Errorf("job time %d min over %d engineers, want about 498 over 2", ev.Time.Minutes, len(ev.Time.PerEngineer))
	}
	if len(ev.Photos) != 3 {
		t.Errorf("%d photos, want 3", len(ev.Photos))
	}

	// Alice completes the job.
	h.press(ua, cardA.MessageID, fmt.Sprintf("j:cp:%d", j.ID))
	msgs = h.press(ua, cardA.MessageID, fmt.Sprintf("j:cy:%d", j.ID))
	if len(msgs) != 1 || msgs[0].Text != "Completed: Flat 3 EICR." {
		t.Fatalf("complete: %q", chatTexts(msgs))
	}
	card := h.message(ua, cardA.MessageID)
	for _, want := range []string{"completed", "Time so far: 8 h 1", "Photos: 3", "Defects: C1", "Certificates: EICR draft"} {
		if !strings.Contains(card.Text, want) {
			t.Errorf("final card lacks %q:\n%s", want, card.Text)
		}
	}
	if _, ok := card.Markup.Button("Check in"); ok {
		t.Error("a completed job offers Check in")
	}
	if testing.Verbose() {
		t.Logf("Alice's chat:\n%s", h.transcript(ua))
		t.Logf("the manager's chat:\n%s", h.transcript(um))
	}
}

func TestDayDefectOtherCodes(t *testing.T) {
	h := newChatHarness(t, chatOptions{})
	eng, u := h.linked(fieldops.RoleEngineer)
	j := h.job("Shop EICR", h.today(0, 1), h.today(23, 59), eng)
	card := h.openCard(u, j.ID)
	tests := []struct {
		code, text, want string
	}{
		{"C2", "No RCD on the socket circuits", "C2 logged on Shop EICR."},
		{"C3", "No labels on the board", "C3 logged on Shop EICR."},
		{"FI", "Circuit 7 not traced", "FI logged on Shop EICR."},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			h.press(u, card.MessageID, fmt.Sprintf("j:df:%d", j.ID))
			h.press(u, card.MessageID, fmt.Sprintf("j:dc:%d:%s", j.ID, tt.code))
			msgs := h.act(u, func() { h.srv.SendText(u, tt.text) })
			if len(msgs) != 1 || !strings.HasPrefix(msgs[0].Text, tt.want) {
				t.Fatalf("got %q", chatTexts(msgs))
			}
		})
	}
	t.Run("ErrTooLong", func(t *testing.T) {
		h.press(u, card.MessageID, fmt.Sprintf("j:df:%d", j.ID))
		h.press(u, card.MessageID, fmt.Sprintf("j:dc:%d:C2", j.ID))
		msgs := h.act(u, func() { h.srv.SendText(u, strings.Repeat("x", 2100)) })
		if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "too long") {
			t.Fatalf("got %q", chatTexts(msgs))
		}
		if st, _ := h.tgsvc.ChatState(context.Background(), u.ID); st.Kind != "defect_description" {
			t.Errorf("the question was dropped (state %q)", st.Kind)
		}
		msgs = h.act(u, func() { h.srv.SendText(u, "Cracked socket front") })
		if len(msgs) != 1 || !strings.HasPrefix(msgs[0].Text, "C2 logged") {
			t.Fatalf("retry: %q", chatTexts(msgs))
		}
	})
	if n := h.count(`SELECT count(*) FROM defects WHERE job_id = $1`, j.ID); n != 4 {
		t.Errorf("%d defects, want 4", n)
	}
	if n := h.count(`SELECT count(*) FROM notifications WHERE kind = 'defect.c1'`); n != 0 {
		t.Errorf("%d C1 alerts for non-C1 defects", n)
	}
}

func buttonTexts(m telegramtest.SentMessage) []string {
	var out []string
	for _, b := range m.Markup.Buttons() {
		out = append(out, b.Text)
	}
	return out
}

// mustMemberID is the member a linked Telegram user acts as.
func mustMemberID(t *testing.T, h *chatHarness, u *telegramtest.User) int64 {
	t.Helper()
	link, _, err := h.tgsvc.Resolve(context.Background(), u.ID)
	if err != nil || link == nil {
		t.Fatalf("resolve %d: %v", u.ID, err)
	}
	return link.UserID
}

// transcript is a chat as the user sees it, for -v runs.
func (h *chatHarness) transcript(u *telegramtest.User) string {
	var b strings.Builder
	for _, m := range h.srv.History(u.ChatID()) {
		who := "user"
		if m.From != nil && m.From.IsBot {
			who = "bot "
		}
		text := m.Text
		switch {
		case m.Location != nil:
			text = fmt.Sprintf("[location %.5f,%.5f]", m.Location.Latitude, m.Location.Longitude)
		case len(m.Photo) > 0:
			text = "[photo] " + m.Caption
		case m.Document != nil:
			text = "[file " + m.Document.FileName + "] " + m.Caption
		}
		fmt.Fprintf(&b, "%s #%d: %s\n", who, m.ID, strings.ReplaceAll(text, "\n", "\n         "))
		if m.ReplyMarkup != nil {
			var bs []string
			for _, row := range m.ReplyMarkup.InlineKeyboard {
				for _, x := range row {
					bs = append(bs, "["+x.Text+"]")
				}
			}
			fmt.Fprintf(&b, "         %s\n", strings.Join(bs, " "))
		}
	}
	return b.String()
}
