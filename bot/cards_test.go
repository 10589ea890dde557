package bot_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fieldops/fieldops"
)

// TestCardDoubleTap: a second press of a button that acts, on the same
// message within 10 seconds, does nothing but say so.
func TestCardDoubleTap(t *testing.T) {
	h := newChatHarness(t, chatOptions{})
	eng, u := h.linked(fieldops.RoleEngineer)
	j := h.job("Flat 7 EICR", h.today(0, 1), h.today(23, 59), eng)
	card := h.openCard(u, j.ID)
	drafts := func() int { return h.count(`SELECT count(*) FROM certificates WHERE job_id = $1`, j.ID) }
	pick, eicr := fmt.Sprintf("j:ce:%d", j.ID), fmt.Sprintf("j:ct:%d:eicr", j.ID)

	// Two taps on EICR: the second was sent before the card changed.
	h.press(u, card.MessageID, pick)
	want := h.settled() + 2
	first, err := h.srv.PressButton(u, card.MessageID, eicr)
	if err != nil {
		t.Fatal(err)
	}
	second, err := h.srv.SendCallback(u, card.MessageID, eicr)
	if err != nil {
		t.Fatal(err)
	}
	h.waitUntil("both presses to be answered", func() bool { return h.settled() >= want })
	if n := drafts(); n != 1 {
		t.Fatalf("%d certificate drafts, want 1", n)
	}
	for _, c := range []struct {
		id, text string
	}{{first.CallbackQuery.ID, ""}, {second.CallbackQuery.ID, "Done already."}} {
		cb, ok := h.srv.CallbackByID(c.id)
		if !ok || !cb.Answered || cb.Text != c.text {
			t.Errorf("press %s answered %v with %q, want %q", c.id, cb.Answered, cb.Text, c.text)
		}
	}

	// The picker opened again at once: still a double tap.
	h.press(u, card.MessageID, pick)
	h.press(u, card.MessageID, eicr)
	if n := drafts(); n != 1 {
		t.Fatalf("%d certificate drafts after a third tap within 10 s, want 1", n)
	}

	// Later, the same button (the picker is still up: the double tap
	// changed nothing) is a new request.
	h.clock.Advance(11 * time.Second)
	msgs := h.press(u, card.MessageID, eicr)
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0].Text, "EICR draft started") {
		t.Fatalf("after 11 s: %q", chatTexts(msgs))
	}
	if n := drafts(); n != 2 {
		t.Errorf("%d certificate drafts, want 2", n)
	}
}
