package bot_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/go-telegram/bot/models"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/bot/telegramtest"
	"github.com/fieldops/fieldops/store"
)

const chatLinkFirst = "To use this bot, open your profile in the fieldops web panel, choose Link Telegram and tap the link."

func TestChatUnlinkedGetsInstructionsOnly(t *testing.T) {
	h := newChatHarness(t, chatOptions{})
	u := h.srv.NewUser("Stranger", "stranger")
	steps := []struct {
		name string
		send func()
	}{
		{"text", func() { h.srv.SendText(u, "hello") }},
		{"command", func() { h.srv.SendCommand(u, "/today", "") }},
		{"start without token", func() { h.srv.SendCommand(u, "/start", "") }},
		{"location", func() { h.srv.SendLocation(u, chatSite.Lat, chatSite.Lng) }},
		{"photo", func() { h.srv.SendPhoto(u, []byte("\xff\xd8\xff\xe0 not really a jpeg"), "", 0) }},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			msgs := h.act(u, s.send)
			if len(msgs) != 1 || msgs[0].Text != chatLinkFirst || len(msgs[0].Markup.Buttons()) != 0 {
				t.Fatalf("got %q, want only the instructions", chatTexts(msgs))
			}
		})
	}
	if cmds := h.srv.CommandsFor(u); len(cmds) != 0 {
		t.Errorf("an unlinked chat got commands %v", cmds)
	}
	if n := h.count(`SELECT count(*) FROM photos`); n != 0 {
		t.Errorf("%d photos stored for an unlinked chat", n)
	}
}

func TestChatGroupRefused(t *testing.T) {
	h := newChatHarness(t, chatOptions{})
	_, u := h.linked(fieldops.RoleEngineer)
	crew := h.srv.NewGroup("Crew", u)
	const refusal = "I only work in a private chat: open a chat with @fieldops_test_bot and send /start."
	in := telegramtest.InGroup(crew)
	tests := []struct {
		name   string
		send   func()
		answer bool
	}{
		{"Chatter", func() { h.srv.SendText(u, "running 10 min late, traffic on the A56", in) }, false},
		{"OtherBotCommand", func() { h.srv.SendCommand(u, "/today@some_other_bot", "", in) }, false},
		{"OtherMention", func() { h.srv.SendText(u, "ask @fieldops_test_bot_fan about it", in) }, false},
		{"Command", func() { h.srv.SendCommand(u, "/today", "", in) }, true},
		{"CommandToUs", func() { h.srv.SendCommand(u, "/today@fieldops_test_bot", "", in) }, true},
		{"Mention", func() { h.srv.SendText(u, "@FieldOps_Test_Bot what's on today?", in) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(h.srv.Messages(crew.ID))
			h.act(u, tt.send)
			msgs := h.srv.Messages(crew.ID)[before:]
			switch {
			case !tt.answer && len(msgs) != 0:
				t.Fatalf("answered group chatter: %q", chatTexts(msgs))
			case tt.answer && (len(msgs) != 1 || msgs[0].Text != refusal):
				t.Fatalf("group got %q, want %q", chatTexts(msgs), refusal)
			}
		})
	}
}

func TestChatLinkSetsCommandsByRole(t *testing.T) {
	h := newChatHarness(t, chatOptions{})
	tests := []struct {
		role          fieldops.Role
		label         string
		want, without []string
	}{
		{fieldops.RoleEngineer, "Engineer", []string{"today", "week", "upcoming", "job", "help"}, []string{"capacity"}},
		{fieldops.RoleManager, "Manager", []string{"today", "week", "upcoming", "job", "capacity", "help"}, nil},
		{fieldops.RoleOwner, "Owner", []string{"today", "capacity", "help"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.label, func(t *testing.T) {
			var u *telegramtest.User
			if tt.role == fieldops.RoleOwner {
				u = h.srv.NewUser("Olive", "olive")
				h.link(h.owner, u)
			} else {
				_, u = h.linked(tt.role)
			}
			welcome := h.srv.Messages(u.ChatID())[0].Text
			if !strings.Contains(welcome, "Chat Sparks") || !strings.Contains(welcome, "as "+tt.label) {
				t.Errorf("welcome %q does not name the organisation and the role", welcome)
			}
			var got []string
			for _, c := range h.srv.CommandsFor(u) {
				got = append(got, c.Command)
			}
			for _, c := range tt.want {
				if !slices.Contains(got, c) {
					t.Errorf("commands %v lack /%s", got, c)
				}
			}
			for _, c := range tt.without {
				if slices.Contains(got, c) {
					t.Errorf("commands %v offer /%s", got, c)
				}
			}
			if cmds := h.srv.Commands(&models.BotCommandScopeDefault{}); len(cmds) != 0 {
				t.Errorf("default commands were set: %v", cmds)
			}
		})
	}
	t.Run("ErrTokenUsed", func(t *testing.T) {
		_, mctx := h.member(fieldops.RoleEngineer)
		tok, err := h.tgsvc.CreateLinkToken(mctx)
		if err != nil {
			t.Fatal(err)
		}
		first := h.srv.NewUser("First", "first")
		h.act(first, func() { h.srv.SendCommand(first, "/start", tok.Token) })
		second := h.srv.NewUser("Second", "second")
		msgs := h.act(second, func() { h.srv.SendCommand(second, "/start", tok.Token) })
		if len(msgs) != 1 || strings.Contains(msgs[0].Text, "Welcome") {
			t.Fatalf("a used token linked again: %q", chatTexts(msgs))
		}
		if cmds := h.srv.CommandsFor(second); len(cmds) != 0 {
			t.Errorf("refused link got commands %v", cmds)
		}
	})
}

func TestChatTodayListsOwnJobs(t *testing.T) {
	h := newChatHarness(t, chatOptions{})
	alice, ua := h.linked(fieldops.RoleEngineer)
	bob, _ := h.linked(fieldops.RoleEngineer)
	_, um := h.linked(fieldops.RoleManager)
	mine := h.job("Alice EICR", h.today(9, 0), h.today(12, 0), alice)
	theirs := h.job("Bob PAT", h.today(13, 0), h.today(15, 0), bob)
	h.job("Alice tomorrow", h.today(9, 0).AddDate(0, 0, 1), h.today(10, 0).AddDate(0, 0, 1), alice)

	msgs := h.act(ua, func() { h.srv.SendCommand(ua, "/today", "") })
	if len(msgs) != 1 {
		t.Fatalf("/today: %q", chatTexts(msgs))
	}
	list := msgs[0]
	if !strings.Contains(list.Text, "Alice EICR") || strings.Contains(list.Text, "Bob PAT") || strings.Contains(list.Text, "tomorrow") {
		t.Errorf("engineer's /today:\n%s", list.Text)
	}
	if got := list.Markup.CallbackData(); !slices.Equal(got, []string{fmt.Sprintf("j:o:%d", mine.ID)}) {
		t.Errorf("Open buttons %v", got)
	}

	// Open gives the card with what an engineer may do.
	msgs = h.press(ua, list.MessageID, fmt.Sprintf("j:o:%d", mine.ID))
	if len(msgs) != 1 {
		t.Fatalf("open: %q", chatTexts(msgs))
	}
	card := msgs[0]
	for _, want := range []string{"Alice EICR", "Acme Lettings", "1 Deansgate, Manchester",
		"https://www.google.com/maps/search/?api=1&query=53.4794,-2.2453", "09:00–12:00", "(primary)", "You: not checked in"} {
		if !strings.Contains(card.Text, want) {
			t.Errorf("card lacks %q:\n%s", want, card.Text)
		}
	}
	for _, b := range []string{"Check in", "Photos", "Log defect", "Complete", "Certificate"} {
		if _, ok := card.Markup.Button(b); !ok {
			t.Errorf("card has no %q button: %v", b, card.Markup.CallbackData())
		}
	}
	if _, ok := card.Markup.Button("Check out"); ok {
		t.Error("card offers Check out before check-in")
	}
	for _, d := range card.Markup.CallbackData() {
		if len(d) > 64 {
			t.Errorf("callback data %q over 64 bytes", d)
		}
	}
	if got := h.srv.Callbacks(); len(got) == 0 || !got[len(got)-1].Answered {
		t.Error("the Open press was not answered")
	}

	// Someone else's job, by number: not found.
	msgs = h.act(ua, func() { h.srv.SendCommand(ua, "/job", fmt.Sprint(theirs.ID)) })
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "not found") {
		t.Errorf("/job of another engineer's job: %q", chatTexts(msgs))
	}

	// A manager sees the team's day.
	msgs = h.act(um, func() { h.srv.SendCommand(um, "/today", "") })
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "Alice EICR") || !strings.Contains(msgs[0].Text, "Bob PAT") {
		t.Errorf("manager's /today: %q", chatTexts(msgs))
	}

	// /capacity is the manager's; an engineer is refused by the service.
	msgs = h.act(ua, func() { h.srv.SendCommand(ua, "/capacity", "") })
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "permission") {
		t.Errorf("engineer's /capacity: %q", chatTexts(msgs))
	}
	msgs = h.act(um, func() { h.srv.SendCommand(um, "/capacity", "") })
	if len(msgs) != 1 || strings.Contains(msgs[0].Text, "permission") {
		t.Errorf("manager's /capacity: %q", chatTexts(msgs))
	}
}

func TestChatCraftedCallbackOtherOrg(t *testing.T) {
	h := newChatHarness(t, chatOptions{})
	alice, ua := h.linked(fieldops.RoleEngineer)
	own := h.job("Alice EICR", h.today(9, 0), h.today(12, 0), alice)
	card := h.openCard(ua, own.ID)

	// Another organisation's job, with its own engineer.
	otherOrg, _, otherOwner := h.newOrg("Rival Electrics Ltd", fmt.Sprintf("rival%d@example.co.uk", chatSeq.Add(1)))
	c, err := store.NewCustomerService(h.db).CreateCustomer(otherOwner, fieldops.CustomerUpdate{Name: ptr("Rival Customer")})
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.NewSiteService(h.db).CreateSite(otherOwner, fieldops.SiteUpdate{CustomerID: c.ID, Address: ptr("2 High St, Leeds"),
		Postcode: ptr("ls1 1aa"), Latitude: ptr(53.8), Longitude: ptr(-1.55)})
	if err != nil {
		t.Fatal(err)
	}
	rival, err := h.members.AddMember(otherOwner, fieldops.NewMember{Email: fmt.Sprintf("rival.eng%d@example.co.uk", otherOrg),
		Name: "Rival Engineer", Role: fieldops.RoleEngineer})
	if err != nil {
		t.Fatal(err)
	}
	foreign := h.jobIn(otherOwner, c.ID, s.ID, "Rival job", h.today(9, 0), h.today(12, 0), rival.UserID)

	for _, data := range []string{"j:o:%d", "j:r:%d", "j:ci:%d", "j:co:%d", "j:ph:%d", "j:df:%d", "j:dc:%d:C1", "j:cp:%d", "j:cy:%d", "j:ce:%d", "j:ct:%d:eicr"} {
		data := fmt.Sprintf(data, foreign.ID)
		t.Run(data, func(t *testing.T) {
			msgs := h.act(ua, func() {
				if _, err := h.srv.SendCallback(ua, card.MessageID, data); err != nil {
					t.Fatal(err)
				}
			})
			if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "not found") {
				t.Fatalf("crafted %s: %q", data, chatTexts(msgs))
			}
			cbs := h.srv.Callbacks()
			if last := cbs[len(cbs)-1]; last.Data != data || !last.Answered {
				t.Errorf("press %q not answered", data)
			}
			if got := h.message(ua, card.MessageID); got.Text != card.Text {
				t.Errorf("the card was changed:\n%s", got.Text)
			}
		})
	}
	// Nothing was written: no state, no entries, no defects, no
	// certificates, the job as it was.
	st, err := h.tgsvc.ChatState(context.Background(), ua.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Kind != "" {
		t.Errorf("chat state %q left by a crafted press", st.Kind)
	}
	for table, n := range map[string]int{
		"time_entries": h.count(`SELECT count(*) FROM time_entries WHERE job_id = $1`, foreign.ID),
		"defects":      h.count(`SELECT count(*) FROM defects WHERE job_id = $1`, foreign.ID),
		"certificates": h.count(`SELECT count(*) FROM certificates WHERE job_id = $1`, foreign.ID),
		"completed":    h.count(`SELECT count(*) FROM jobs WHERE id = $1 AND status <> 'scheduled'`, foreign.ID),
	} {
		if n != 0 {
			t.Errorf("%s: %d rows written through a crafted press", table, n)
		}
	}
}

func TestChatRevokedLinkRefused(t *testing.T) {
	tests := []struct {
		name   string
		revoke func(h *chatHarness, userID int64, link *fieldops.TelegramLink) error
	}{
		{"RevokeSession", func(h *chatHarness, _ int64, link *fieldops.TelegramLink) error {
			return h.sessions.RevokeSession(h.owner, link.SessionID)
		}},
		{"Unlink", func(h *chatHarness, userID int64, _ *fieldops.TelegramLink) error {
			return h.tgsvc.Unlink(h.owner, userID)
		}},
		{"RemoveMember", func(h *chatHarness, userID int64, _ *fieldops.TelegramLink) error {
			return h.members.RemoveMember(h.owner, userID)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newChatHarness(t, chatOptions{})
			alice, ua := h.linked(fieldops.RoleEngineer)
			j := h.job("Alice EICR", h.today(9, 0), h.today(12, 0), alice)
			card := h.openCard(ua, j.ID)
			link, _, err := h.tgsvc.Resolve(context.Background(), ua.ID)
			if err != nil || link == nil {
				t.Fatalf("resolve: %v", err)
			}

			// Updates waiting in the inbox while the link is revoked: a
			// command, and a check-in press.
			h.stopBot()
			waiting := []*models.Update{h.srv.SendCommand(ua, "/today", "")}
			upd, err := h.srv.PressButton(ua, card.MessageID, fmt.Sprintf("j:ci:%d", j.ID))
			if err != nil {
				t.Fatal(err)
			}
			waiting = append(waiting, upd)
			for _, w := range waiting {
				h.storeWaiting(w, w.ID, ua.ChatID(), ua.ID)
			}
			if err := tt.revoke(h, alice, link); err != nil {
				t.Fatal(err)
			}
			before := len(h.srv.Messages(ua.ChatID()))
			h.start()
			h.waitUntil("the waiting updates to be answered", func() bool { return h.settled() >= int64(len(waiting)) })
			msgs := h.srv.Messages(ua.ChatID())[before:]
			if len(msgs) != len(waiting) {
				t.Fatalf("answers to waiting updates: %q", chatTexts(msgs))
			}
			for _, m := range msgs {
				if m.Text != chatLinkFirst && m.Text != "Your Telegram link has ended. Link it again from the web panel." {
					t.Errorf("a revoked link got %q", m.Text)
				}
			}
			if st, _ := h.tgsvc.ChatState(context.Background(), ua.ID); st.Kind != "" {
				t.Errorf("a revoked link set chat state %q", st.Kind)
			}

			// And the next message too.
			msgs = h.act(ua, func() { h.srv.SendText(ua, "hello") })
			if len(msgs) != 1 || msgs[0].Text != chatLinkFirst {
				t.Errorf("after revocation: %q", chatTexts(msgs))
			}
		})
	}
}

func TestChatSeveralOrganisationsPicker(t *testing.T) {
	h := newChatHarness(t, chatOptions{})
	_, mctx := h.member(fieldops.RoleEngineer)
	u := h.srv.NewUser("Multi", "multi")
	h.link(mctx, u)
	// The same Telegram account linked in a second organisation (by its
	// own member): the latest link is current.
	_, _, otherOwner := h.newOrg("Another Firm Ltd", fmt.Sprintf("another%d@example.co.uk", chatSeq.Add(1)))
	h.link(otherOwner, u)
	msgs := h.act(u, func() { h.srv.SendCommand(u, "/help", "") })
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "Another Firm Ltd") {
		t.Fatalf("/help after the second link: %q", chatTexts(msgs))
	}
	// Forget the choice: the next message asks.
	if _, err := h.pool.Exec(context.Background(), `UPDATE telegram_chats SET active_org_id = NULL WHERE telegram_user_id = $1`, u.ID); err != nil {
		t.Fatal(err)
	}
	msgs = h.act(u, func() { h.srv.SendCommand(u, "/today", "") })
	if len(msgs) != 1 || len(msgs[0].Markup.Buttons()) != 2 {
		t.Fatalf("picker: %q %v", chatTexts(msgs), msgs)
	}
	var b models.InlineKeyboardButton
	for _, x := range msgs[0].Markup.Buttons() {
		if strings.HasPrefix(x.Text, "Chat Sparks") {
			b = x
		}
	}
	h.press(u, msgs[0].MessageID, b.CallbackData)
	if got := h.message(u, msgs[0].MessageID); !strings.HasPrefix(got.Text, "Now working for") {
		t.Errorf("picker answer: %q", got.Text)
	}
	msgs = h.act(u, func() { h.srv.SendCommand(u, "/today", "") })
	if len(msgs) != 1 || strings.Contains(msgs[0].Text, "Which organisation") {
		t.Errorf("still asked after choosing: %q", chatTexts(msgs))
	}
}

func TestChatTextNotes(t *testing.T) {
	h := newChatHarness(t, chatOptions{})
	eng, u := h.linked(fieldops.RoleEngineer)
	first := h.job("Flat 1 EICR", h.today(0, 1), h.today(23, 59), eng)
	second := h.job("Flat 2 EICR", h.today(0, 2), h.today(23, 59), eng)
	third := h.job("Flat 3 EICR", h.today(0, 3), h.today(23, 59), eng)
	notes := func(jobID int64, body string) int {
		return h.count(`SELECT count(*) FROM notes WHERE job_id = $1 AND body = $2`, jobID, body)
	}
	card1 := h.openCard(u, first.ID)
	h.checkIn(u, card1, first.ID, chatSite)

	t.Run("CheckedInOnOne", func(t *testing.T) {
		msgs := h.act(u, func() { h.srv.SendText(u, "Meter cupboard locked") })
		if len(msgs) != 1 || msgs[0].Text != "Noted on Flat 1 EICR." {
			t.Fatalf("got %q", chatTexts(msgs))
		}
		if n := notes(first.ID, "Meter cupboard locked"); n != 1 {
			t.Errorf("%d notes on the job", n)
		}
	})

	card2 := h.openCard(u, second.ID)
	h.checkIn(u, card2, second.ID, chatSite)
	t.Run("CheckedInOnSeveral", func(t *testing.T) {
		msgs := h.act(u, func() { h.srv.SendText(u, "Fuse board labelled") })
		if len(msgs) != 1 || msgs[0].Text != "You are checked in on several jobs: reply to a job card to add a note." {
			t.Fatalf("got %q", chatTexts(msgs))
		}
		if n := h.count(`SELECT count(*) FROM notes WHERE body = 'Fuse board labelled'`); n != 0 {
			t.Errorf("%d notes saved", n)
		}
	})
	t.Run("ReplyToCard", func(t *testing.T) {
		msgs := h.act(u, func() { h.srv.SendText(u, "Fuse board labelled", telegramtest.ReplyTo(card2.MessageID)) })
		if len(msgs) != 1 || msgs[0].Text != "Noted on Flat 2 EICR." {
			t.Fatalf("got %q", chatTexts(msgs))
		}
		if n, m := notes(second.ID, "Fuse board labelled"), notes(first.ID, "Fuse board labelled"); n != 1 || m != 0 {
			t.Errorf("notes: %d on the card's job, %d on the other", n, m)
		}
	})
	t.Run("ReplyToCardNotCheckedIn", func(t *testing.T) {
		card3 := h.openCard(u, third.ID)
		msgs := h.act(u, func() { h.srv.SendText(u, "Tenant away until 3pm", telegramtest.ReplyTo(card3.MessageID)) })
		if len(msgs) != 1 || msgs[0].Text != "Noted on Flat 3 EICR." {
			t.Fatalf("got %q", chatTexts(msgs))
		}
		if n := notes(third.ID, "Tenant away until 3pm"); n != 1 {
			t.Errorf("%d notes on the card's job", n)
		}
	})
}

func TestChatSwitch(t *testing.T) {
	h := newChatHarness(t, chatOptions{})
	_, mctx := h.member(fieldops.RoleEngineer)
	u := h.srv.NewUser("Multi", "multi")
	h.link(mctx, u)
	commands := func() []string {
		var out []string
		for _, c := range h.srv.CommandsFor(u) {
			out = append(out, c.Command)
		}
		return out
	}

	t.Run("OneOrganisation", func(t *testing.T) {
		msgs := h.act(u, func() { h.srv.SendCommand(u, "/switch", "") })
		if len(msgs) != 1 || !strings.HasPrefix(msgs[0].Text, "You're working for Chat Sparks") || len(msgs[0].Markup.Buttons()) != 0 {
			t.Fatalf("got %q", chatTexts(msgs))
		}
		if slices.Contains(commands(), "switch") {
			t.Errorf("commands %v offer /switch with one organisation", commands())
		}
	})

	// The same Telegram account linked by a member of a second
	// organisation, through the deep link: it becomes the current one.
	otherID, _, otherOwner := h.newOrg("Another Firm Ltd", fmt.Sprintf("another%d@example.co.uk", chatSeq.Add(1)))
	m, err := h.members.AddMember(otherOwner, fieldops.NewMember{Email: fmt.Sprintf("multi%d@example.co.uk", otherID),
		Name: "Multi Engineer", Role: fieldops.RoleEngineer})
	if err != nil {
		t.Fatal(err)
	}
	h.link(fieldops.NewContext(context.Background(), fieldops.Actor{UserID: m.UserID, OrgID: otherID, Channel: fieldops.ChannelWeb}), u)
	if !slices.Contains(commands(), "switch") {
		t.Errorf("commands %v lack /switch after the second link", commands())
	}

	msgs := h.act(u, func() { h.srv.SendCommand(u, "/switch", "") })
	if len(msgs) != 1 || msgs[0].Text != "Which organisation are you working for now?" {
		t.Fatalf("/switch: %q", chatTexts(msgs))
	}
	var labels []string
	var chat models.InlineKeyboardButton
	for _, b := range msgs[0].Markup.Buttons() {
		labels = append(labels, b.Text)
		if strings.HasPrefix(b.Text, "Chat Sparks") {
			chat = b
		}
	}
	if !slices.Equal(labels, []string{"✓ Another Firm Ltd (Engineer)", chat.Text}) || chat.CallbackData != fmt.Sprintf("org:%d", h.orgID) {
		t.Fatalf("picker buttons %q", labels)
	}
	h.press(u, msgs[0].MessageID, chat.CallbackData)
	if got := h.message(u, msgs[0].MessageID); !strings.HasPrefix(got.Text, "Now working for Chat Sparks") {
		t.Errorf("picker answer: %q", got.Text)
	}
	if !slices.Contains(commands(), "switch") {
		t.Errorf("commands %v lack /switch after choosing", commands())
	}
	msgs = h.act(u, func() { h.srv.SendCommand(u, "/help", "") })
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0].Text, "Chat Sparks") || !strings.Contains(msgs[0].Text, "/switch") {
		t.Errorf("/help after switching: %q", chatTexts(msgs))
	}
}

// TestChatBlockedThenBack: a link marked blocked between two messages less
// than a minute apart (when the link is not touched again) works at once
// when the user writes again.
func TestChatBlockedThenBack(t *testing.T) {
	h := newChatHarness(t, chatOptions{notify: true})
	// Tomorrow morning: ahead of the database's clock, which dates the
	// notification.
	h.clock.Set(h.today(7, 30).AddDate(0, 0, 1))
	eng, u := h.linked(fieldops.RoleEngineer)
	if msgs := h.act(u, func() { h.srv.SendCommand(u, "/today", "") }); len(msgs) != 1 {
		t.Fatalf("/today: %q", chatTexts(msgs))
	}
	h.act(u, func() { h.srv.BlockBot(u) })
	h.job("Flat 9 EICR", h.today(13, 0), h.today(14, 0), eng) // its notification meets the block
	h.waitUntil("the link to be marked blocked", func() bool {
		return h.count(`SELECT count(*) FROM telegram_links WHERE telegram_user_id = $1 AND blocked_at IS NOT NULL AND NOT active`, u.ID) == 1
	})
	// Writing unblocks the bot: two updates, my_chat_member and the
	// message.
	before := len(h.srv.Messages(u.ChatID()))
	want := h.settled() + 2
	h.srv.SendCommand(u, "/today", "")
	h.waitUntil("the message to be answered", func() bool { return h.settled() >= want })
	msgs := h.srv.Messages(u.ChatID())[before:]
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "Flat 9 EICR") {
		t.Fatalf("/today after unblocking: %q", chatTexts(msgs))
	}
}
