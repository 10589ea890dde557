package bot

import (
	"context"
	"strings"

	tgbot "github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"github.com/fieldops/fieldops"
)

// handle is the bot's handler of every update, run by the engine inside
// the update's transaction (ctx carries it). It translates: who sent it
// (resolved through the Telegram service, then acting as that member),
// what they asked, and the services' answers. It never calls Telegram
// directly: answers are queued and sent after the commit.
func (b *Bot) handle(ctx context.Context, tg *tgbot.Bot, upd *models.Update) {
	switch {
	case upd == nil:
	case upd.Message != nil:
		b.handleMessage(ctx, tg, upd.Message)
	case upd.EditedMessage != nil:
		b.handleEditedMessage(ctx, tg, upd.EditedMessage)
	case upd.CallbackQuery != nil:
		b.handleCallback(ctx, tg, upd.CallbackQuery)
	}
}

// handleMessage routes a message: commands, locations, photos and image
// files, then text.
func (b *Bot) handleMessage(ctx context.Context, tg *tgbot.Bot, m *models.Message) {
	if m.From == nil || m.From.IsBot || m.LeftChatMember != nil {
		return
	}
	t := b.newTurn(ctx, tg, m.From, m.Chat)
	if !t.user.Private {
		if b.addressed(m) {
			t.send(b.privateOnly(), nil)
		}
		return
	}
	// A message between two presses makes the second one a request of
	// its own (Check in, the location, Check in again), not a double tap.
	b.pressed.forget(m.From.ID)
	cmd, arg := parseCommand(m.Text)
	if cmd == "start" && arg != "" {
		t.handleLink(arg)
		return
	}
	if !t.resolve(false) {
		return
	}
	switch {
	case cmd != "":
		t.handleCommand(cmd, arg)
	case m.Location != nil:
		t.handleLocation(m, false)
	case len(m.Photo) > 0 || m.Document != nil:
		t.handleMedia(m)
	case strings.TrimSpace(m.Text) != "":
		t.handleText(m.Text, cardReplied(m))
	default:
		t.send("I take text, photos, locations and commands. Send /help to see what I can do.", nil)
	}
}

// handleEditedMessage follows a live location: its moves arrive as
// edits. One answers a pending check-in or check-out; anything else is
// ignored without a word.
func (b *Bot) handleEditedMessage(ctx context.Context, tg *tgbot.Bot, m *models.Message) {
	if m.From == nil || m.Location == nil || m.Chat.Type != models.ChatTypePrivate {
		return
	}
	b.pressed.forget(m.From.ID)
	t := b.newTurn(ctx, tg, m.From, m.Chat)
	if !t.resolve(true) {
		return
	}
	s, err := t.b.svc.Telegram.ChatState(t.ctx, t.user.ID)
	if err != nil {
		if !isRefusal(err) {
			fail(t.ctx, err)
		}
		return
	}
	if s.Kind == stateCheckIn || s.Kind == stateCheckOut {
		in := locationInput(m, true)
		in.ReceivedAt = receivedAt(t.ctx)
		t.checkInOut(s.Kind, s.JobID, in, intData(s.Data, "card"), 0)
	}
}

// handleCallback answers a button press: the answer to the press is
// queued first, whatever follows.
func (b *Bot) handleCallback(ctx context.Context, tg *tgbot.Bot, q *models.CallbackQuery) {
	chat := models.Chat{ID: q.From.ID, Type: models.ChatTypePrivate}
	msgID := 0
	switch {
	case q.Message.Message != nil:
		chat, msgID = q.Message.Message.Chat, q.Message.Message.ID
	case q.Message.InaccessibleMessage != nil:
		chat = q.Message.InaccessibleMessage.Chat // msgID 0: it cannot be edited
	}
	d, ok := parseData(q.Data)
	if ok && d.kind == "j" && actingVerbs[d.verb] && chat.Type == models.ChatTypePrivate {
		if b.doubleTap(ctx, q.From.ID, q.Data, msgID) {
			queue(ctx, "answerCallbackQuery", &tgbot.AnswerCallbackQueryParams{CallbackQueryID: q.ID, Text: "Done already."})
			return
		}
	}
	queue(ctx, "answerCallbackQuery", &tgbot.AnswerCallbackQueryParams{CallbackQueryID: q.ID})
	t := b.newTurn(ctx, tg, &q.From, chat)
	if !t.user.Private {
		t.send(b.privateOnly(), nil)
		return
	}
	if !ok {
		t.send("That button is out of date. Send /today to start again.", nil)
		return
	}
	if d.kind == "org" {
		t.handleChooseOrganisation(d.id, msgID)
		return
	}
	if !t.resolve(false) {
		return
	}
	switch d.verb {
	case verbOpen:
		t.showCard(d.id, 0)
	case verbRefresh:
		t.showCard(d.id, msgID)
	case verbCheckIn:
		t.askLocation(stateCheckIn, d.id, msgID)
	case verbCheckOut:
		t.askLocation(stateCheckOut, d.id, msgID)
	case verbLocIn:
		t.useSentLocation(stateCheckIn, d.id, msgID)
	case verbLocOut:
		t.useSentLocation(stateCheckOut, d.id, msgID)
	case verbPhotos:
		t.askPhotos(d.id)
	case verbPhotoJob:
		t.attachWaitingPhotos(d.id, msgID)
	case verbDefect:
		t.pickDefectCode(d.id, msgID)
	case verbDefectCode:
		t.askDefectDescription(d.id, d.arg, msgID)
	case verbComplete:
		t.confirmComplete(d.id, msgID)
	case verbCompleteYes:
		t.complete(d.id, msgID)
	case verbCertificate:
		t.pickCertificateType(d.id, msgID)
	case verbCertType:
		t.createCertificate(d.id, d.arg, msgID)
	default:
		t.send("That button is out of date. Send /today to start again.", nil)
	}
}

// handleCommand runs a command of a linked member.
func (t *turn) handleCommand(cmd, arg string) {
	switch cmd {
	case "start":
		t.send("You're linked to "+t.link.OrgName+" as "+t.link.Role.Label()+". Send /today to see your jobs.", nil)
		t.setCommands()
	case "today", "week", "upcoming":
		t.handleList(cmd)
	case "job":
		t.handleJob(arg)
	case "capacity":
		t.handleCapacity()
	case "help":
		t.handleHelp()
	case "switch":
		t.handleSwitch()
	case "cancel":
		t.cancel()
	default:
		t.send("I don't know /"+cmd+". Send /help to see what I can do.", nil)
	}
}

// handleText answers the pending question, or keeps a note: on the job
// whose card the text replies to (cardJob, 0 for none), else on the job
// the member is checked in on.
func (t *turn) handleText(text string, cardJob int64) {
	s, ok := t.state()
	if !ok {
		return
	}
	if isCancel(text) {
		t.cancel()
		return
	}
	switch {
	case s.Kind == stateDefectDescription:
		// The question asked for this very message.
		t.logDefect(s, text)
		return
	case cardJob != 0:
		if _, err := t.b.svc.Field.AddNote(t.ctx, cardJob, text); t.refused(err) {
			return
		}
		t.send("Noted on "+t.jobTitle(cardJob)+".", nil)
		return
	case s.Kind == stateCheckIn || s.Kind == stateCheckOut:
		t.send("Tap 📍 Send my location below, or Cancel.", locationKeyboard())
		return
	}
	entries, err := t.b.svc.Field.OpenEntries(t.ctx)
	if t.refused(err) {
		return
	}
	switch {
	case len(entries) == 0:
		t.send("Send /today for your jobs, or /help. Text you send while checked in on a job, or in reply to its card, is saved as a note on it.", nil)
		return
	case len(entries) > 1:
		t.send("You are checked in on several jobs: reply to a job card to add a note.", nil)
		return
	}
	e := entries[0]
	if _, err := t.b.svc.Field.AddNote(t.ctx, e.JobID, text); t.refused(err) {
		return
	}
	// The title came with the entry; the note being taken shows that the
	// job is the member's to see.
	title := e.JobTitle
	if title == "" {
		title = "that job"
	}
	t.send("Noted on "+title+".", nil)
}

// cardReplied is the job whose card (a message of the bot's) m replies
// to, or 0.
func cardReplied(m *models.Message) int64 {
	if r := m.ReplyToMessage; r != nil && r.From != nil && r.From.IsBot {
		return jobOfCard(r)
	}
	return 0
}

// cancel drops the pending question.
func (t *turn) cancel() {
	if !t.setState(fieldops.ChatState{}) {
		return
	}
	t.send("Cancelled.", removeKeyboard())
}

func isCancel(text string) bool {
	s := strings.ToLower(strings.TrimSpace(text))
	return s == "cancel" || s == "/cancel" || s == "❌ cancel"
}

// parseCommand splits "/cmd@bot arg" into "cmd" and "arg"; text that is
// not a command gives "".
func parseCommand(text string) (cmd, arg string) {
	if !strings.HasPrefix(text, "/") {
		return "", ""
	}
	head, rest, _ := strings.Cut(strings.TrimSpace(text[1:]), " ")
	head, _, _ = strings.Cut(head, "@")
	return strings.ToLower(head), strings.TrimSpace(rest)
}
