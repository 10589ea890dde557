package bot_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/bot/telegramtest"
)

func TestCheckInFlow(t *testing.T) {
	h := newChatHarness(t, chatOptions{})
	hidden := h.srv.NewUser("Someone", "someone")
	tests := []struct {
		name    string
		at      fieldops.LatLng
		opts    func() []telegramtest.MessageOption
		reply   string   // regexp of the first line
		warning string   // a part of the warning line; "" for none
		flags   []string // the entry's check-in flags
		alert   bool     // managers are alerted
	}{
		{name: "OnSite", at: chatOffset(chatSite, 35), opts: func() []telegramtest.MessageOption { return nil },
			reply: `^Checked in at \d\d:\d\d — 35 m from site\.$`, flags: []string{}},
		{name: "OffSite", at: chatOffset(chatSite, 1200), opts: func() []telegramtest.MessageOption { return nil },
			reply: `^Checked in at \d\d:\d\d — 1\.2 km from site\.$`, warning: "⚠ 1.2 km from the site: your manager will see this.",
			flags: []string{fieldops.LocationOffSite}, alert: true},
		{name: "Forwarded", at: chatOffset(chatSite, 20), opts: func() []telegramtest.MessageOption {
			return []telegramtest.MessageOption{telegramtest.Forwarded(hidden, time.Time{})}
		}, reply: `^Checked in at \d\d:\d\d — 20 m from site\.$`, warning: "forwarded location", flags: []string{fieldops.LocationForwarded}, alert: true},
		{name: "Stale", at: chatOffset(chatSite, 20), opts: func() []telegramtest.MessageOption {
			return []telegramtest.MessageOption{telegramtest.Dated(h.clock.Now().Add(-10 * time.Minute))}
		}, reply: `^Checked in at \d\d:\d\d — 20 m from site\.$`, warning: "10 min old", flags: []string{fieldops.LocationStale}, alert: true},
		{name: "Venue", at: chatOffset(chatSite, 60), opts: func() []telegramtest.MessageOption {
			return []telegramtest.MessageOption{telegramtest.Venue("Deansgate", "1 Deansgate")}
		}, reply: `^Checked in at \d\d:\d\d — 60 m from site\.$`, warning: "not your GPS position", flags: []string{fieldops.LocationVenue}, alert: true},
		{name: "PoorAccuracy", at: chatOffset(chatSite, 30), opts: func() []telegramtest.MessageOption {
			return []telegramtest.MessageOption{telegramtest.Accuracy(400)}
		}, reply: `^Checked in at \d\d:\d\d — 30 m from site\.$`, warning: "Poor GPS accuracy (±400 m)", flags: []string{fieldops.LocationPoorAccuracy}, alert: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eng, u := h.linked(fieldops.RoleEngineer)
			j := h.job("EICR "+tt.name, h.today(0, 1), h.today(23, 59), eng)
			card := h.openCard(u, j.ID)
			alertsBefore := h.count(`SELECT count(*) FROM notifications WHERE kind = 'alert.location_flagged'`)
			msgs := h.checkIn(u, card, j.ID, tt.at, tt.opts()...)
			if len(msgs) != 1 {
				t.Fatalf("check-in answers: %q", chatTexts(msgs))
			}
			lines := strings.Split(msgs[0].Text, "\n")
			if !regexp.MustCompile(tt.reply).MatchString(lines[0]) {
				t.Errorf("reply %q, want %s", lines[0], tt.reply)
			}
			switch {
			case tt.warning == "" && len(lines) > 1:
				t.Errorf("unexpected warning %q", lines[1:])
			case tt.warning != "" && (len(lines) != 2 || !strings.HasPrefix(lines[1], "⚠") || !strings.Contains(lines[1], tt.warning)):
				t.Errorf("warning lines %q, want one with %q", lines[1:], tt.warning)
			}
			if !msgs[0].Markup.RemoveKeyboard || h.srv.Keyboard(u.ChatID()) != nil {
				t.Error("the location keyboard was not removed")
			}
			var flags []string
			if err := h.pool.QueryRow(context.Background(), `SELECT check_in_flags FROM time_entries WHERE job_id = $1 AND user_id = $2 AND check_out_at IS NULL`,
				j.ID, eng).Scan(&flags); err != nil {
				t.Fatal(err)
			}
			if strings.Join(flags, ",") != strings.Join(tt.flags, ",") {
				t.Errorf("flags %v, want %v", flags, tt.flags)
			}
			alerts := h.count(`SELECT count(*) FROM notifications WHERE kind = 'alert.location_flagged'`) - alertsBefore
			if tt.alert != (alerts > 0) {
				t.Errorf("%d location alerts queued, want alert %v", alerts, tt.alert)
			}
			if st, _ := h.tgsvc.ChatState(context.Background(), u.ID); st.Kind != "" {
				t.Errorf("state %q left after check-in", st.Kind)
			}
			// The card now offers Check out.
			got := h.message(u, card.MessageID)
			if _, ok := got.Markup.Button("Check out"); !ok || !strings.Contains(got.Text, "You: checked in since") {
				t.Errorf("card after check-in:\n%s\n%v", got.Text, got.Markup.CallbackData())
			}
		})
	}
}

func TestCheckInRefusals(t *testing.T) {
	h := newChatHarness(t, chatOptions{})
	eng, u := h.linked(fieldops.RoleEngineer)
	other, _ := h.linked(fieldops.RoleEngineer)
	j := h.job("EICR", h.today(0, 1), h.today(23, 59), eng)
	notMine := h.job("Not mine", h.today(0, 1), h.today(23, 59), other)
	card := h.openCard(u, j.ID)

	t.Run("CheckOutWithoutCheckIn", func(t *testing.T) {
		h.act(u, func() { h.srv.SendCallback(u, card.MessageID, fmt.Sprintf("j:co:%d", j.ID)) })
		msgs := h.act(u, func() { h.srv.SendLocation(u, chatSite.Lat, chatSite.Lng) })
		if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "not checked in") || !msgs[0].Markup.RemoveKeyboard {
			t.Fatalf("got %q", chatTexts(msgs))
		}
	})
	t.Run("Twice", func(t *testing.T) {
		h.checkIn(u, card, j.ID, chatSite)
		h.act(u, func() { h.srv.SendCallback(u, card.MessageID, fmt.Sprintf("j:ci:%d", j.ID)) })
		msgs := h.act(u, func() { h.srv.SendLocation(u, chatSite.Lat, chatSite.Lng) })
		if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "already checked in") {
			t.Fatalf("got %q", chatTexts(msgs))
		}
		if n := h.count(`SELECT count(*) FROM time_entries WHERE job_id = $1`, j.ID); n != 1 {
			t.Errorf("%d entries after checking in twice", n)
		}
	})
	t.Run("NotAssigned", func(t *testing.T) {
		msgs := h.act(u, func() { h.srv.SendCallback(u, card.MessageID, fmt.Sprintf("j:ci:%d", notMine.ID)) })
		if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "not found") || msgs[0].Markup.RequestsLocation() {
			t.Fatalf("got %q", chatTexts(msgs))
		}
	})
	t.Run("Cancel", func(t *testing.T) {
		h.act(u, func() { h.srv.SendCallback(u, card.MessageID, fmt.Sprintf("j:co:%d", j.ID)) })
		msgs := h.act(u, func() { h.srv.SendText(u, "Cancel") })
		if len(msgs) != 1 || msgs[0].Text != "Cancelled." || h.srv.Keyboard(u.ChatID()) != nil {
			t.Fatalf("got %q", chatTexts(msgs))
		}
		if n := h.count(`SELECT count(*) FROM time_entries WHERE job_id = $1 AND check_out_at IS NULL`, j.ID); n != 1 {
			t.Errorf("cancel changed the entry")
		}
	})
}

func TestCheckInLiveLocation(t *testing.T) {
	h := newChatHarness(t, chatOptions{})
	eng, u := h.linked(fieldops.RoleEngineer)
	j := h.job("EICR", h.today(0, 1), h.today(23, 59), eng)
	card := h.openCard(u, j.ID)

	// A live location keeps its first date (the wall clock's here: the
	// local server ends live periods by it); its age is not judged.
	h.press(u, card.MessageID, fmt.Sprintf("j:ci:%d", j.ID))
	far := chatOffset(chatSite, 900)
	msgs := h.act(u, func() { h.srv.SendLocation(u, far.Lat, far.Lng, telegramtest.LivePeriod(900)) })
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "900 m from site") {
		t.Fatalf("live check-in: %q", chatTexts(msgs))
	}
	live := h.srv.History(u.ChatID())
	var liveMsg int
	for _, m := range live {
		if m.Location != nil && m.Location.LivePeriod > 0 {
			liveMsg = m.ID
		}
	}
	// Moving with no question pending: ignored quietly.
	msgs = h.act(u, func() {
		if _, err := h.srv.EditLiveLocation(u, liveMsg, chatSite.Lat, chatSite.Lng); err != nil {
			t.Fatal(err)
		}
	})
	if len(msgs) != 0 {
		t.Fatalf("a live location move was answered: %q", chatTexts(msgs))
	}
	// With a check-out pending, the next move answers it.
	h.press(u, card.MessageID, fmt.Sprintf("j:co:%d", j.ID))
	msgs = h.act(u, func() {
		if _, err := h.srv.EditLiveLocation(u, liveMsg, chatOffset(chatSite, 10).Lat, chatSite.Lng); err != nil {
			t.Fatal(err)
		}
	})
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0].Text, "Checked out at") || !strings.Contains(msgs[0].Text, "10 m from site") {
		t.Fatalf("check-out by a live move: %q", chatTexts(msgs))
	}
	var inFlags, outFlags []string
	if err := h.pool.QueryRow(context.Background(), `SELECT check_in_flags, check_out_flags FROM time_entries WHERE job_id = $1`, j.ID).
		Scan(&inFlags, &outFlags); err != nil {
		t.Fatal(err)
	}
	if strings.Join(inFlags, ",") != "off_site,live" || strings.Join(outFlags, ",") != "live" {
		t.Errorf("flags in %v out %v", inFlags, outFlags)
	}
}

func TestCheckInUnaskedLocation(t *testing.T) {
	h := newChatHarness(t, chatOptions{})
	eng, u := h.linked(fieldops.RoleEngineer)
	j := h.job("Morning EICR", h.today(0, 1), h.today(23, 59), eng)

	msgs := h.act(u, func() { h.srv.SendLocation(u, chatSite.Lat, chatSite.Lng, telegramtest.Dated(h.clock.Now())) })
	if len(msgs) != 1 || msgs[0].Text != "Which job is this location for?" {
		t.Fatalf("unasked location: %q", chatTexts(msgs))
	}
	if n := h.count(`SELECT count(*) FROM time_entries`); n != 0 {
		t.Fatalf("a location nobody asked for was acted on: %d entries", n)
	}
	b, ok := msgs[0].Markup.Button("Check in: Morning EICR")
	if !ok {
		t.Fatalf("buttons %v", msgs[0].Markup.CallbackData())
	}
	h.press(u, msgs[0].MessageID, b.CallbackData)
	if got := h.message(u, msgs[0].MessageID); !strings.HasPrefix(got.Text, "Checked in at") || len(got.Markup.Buttons()) != 0 {
		t.Errorf("answer: %q", got.Text)
	}
	if n := h.count(`SELECT count(*) FROM time_entries WHERE job_id = $1 AND user_id = $2`, j.ID, eng); n != 1 {
		t.Errorf("%d entries after choosing the job", n)
	}

	// Now checked in: a location offers to check out.
	msgs = h.act(u, func() { h.srv.SendLocation(u, chatSite.Lat, chatSite.Lng, telegramtest.Dated(h.clock.Now())) })
	if len(msgs) != 1 {
		t.Fatalf("second location: %q", chatTexts(msgs))
	}
	if _, ok := msgs[0].Markup.Button("Check out: Morning EICR"); !ok {
		t.Errorf("buttons %v", msgs[0].Markup.CallbackData())
	}
}
