package bot

import (
	"context"
	"fmt"
	"strings"
	"time"

	tgbot "github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"github.com/fieldops/fieldops"
)

// touchEvery is how often an account's link is touched (TouchLink) while
// it keeps writing.
const touchEvery = time.Minute

// What the bot says when it cannot act for the sender.
const (
	textLinkFirst   = "To use this bot, open your profile in the fieldops web panel, choose Link Telegram and tap the link."
	textLinkEnded   = "Your Telegram link has ended. Link it again from the web panel."
	textLocationUse = "I only take your location when you check in or out, to show you were on site."
)

// turn is the handling of one update: who sent it, in which chat, and the
// member they act as once resolved. Its ctx carries the update's
// transaction and, once the sender is resolved, the actor: every service
// call goes through it.
type turn struct {
	b       *Bot
	tg      *tgbot.Bot
	ctx     context.Context
	user    fieldops.TelegramUser
	link    *fieldops.TelegramLink
	choices []*fieldops.TelegramLink

	org    *fieldops.Organisation // loaded on demand
	grants *fieldops.Grants       // loaded on demand
}

func (b *Bot) newTurn(ctx context.Context, tg *tgbot.Bot, from *models.User, chat models.Chat) *turn {
	return &turn{b: b, tg: tg, ctx: ctx, user: fieldops.TelegramUser{
		ID: from.ID, ChatID: chat.ID, Private: chat.Type == models.ChatTypePrivate,
		Username: from.Username, FirstName: from.FirstName,
	}}
}

// now is the bot's clock.
func (t *turn) now() time.Time { return t.b.Now() }

// self is the member's user id.
func (t *turn) self() int64 { return t.link.UserID }

// resolve finds the link the sender acts through. Without one it answers
// (the instructions to link, or the organisation picker) and reports
// false; with quiet it answers nothing (a live location's edits).
func (t *turn) resolve(quiet bool) bool {
	// Touched first: it makes a link ended only because the user had
	// blocked the bot live again. It also records when the account was
	// last seen, which needs no more than one touch a minute: within that,
	// it is touched only if Resolve finds no link (one may have been
	// marked blocked since the last touch).
	touched := false
	touch := func() bool {
		if err := t.b.svc.Telegram.TouchLink(t.ctx, t.user.ID); err != nil {
			if !quiet || !isRefusal(err) {
				t.refused(err)
			}
			return false
		}
		t.b.touched.put(t.user.ID, t.now(), struct{}{})
		touched = true
		return true
	}
	if _, _, recent := t.b.touched.get(t.user.ID, t.now()); !recent && !touch() {
		return false
	}
	link, choices, err := t.b.svc.Telegram.Resolve(t.ctx, t.user.ID)
	if !touched && fieldops.ErrorCode(err) == fieldops.EUNAUTHORIZED {
		if !touch() {
			return false
		}
		link, choices, err = t.b.svc.Telegram.Resolve(t.ctx, t.user.ID)
	}
	switch {
	case err != nil && fieldops.ErrorCode(err) == fieldops.EUNAUTHORIZED:
		if !quiet {
			t.send(textLinkFirst, nil)
		}
		return false
	case err != nil:
		if quiet && isRefusal(err) {
			return false
		}
		t.refused(err)
		return false
	case link == nil:
		if !quiet {
			t.pickOrganisation(choices, 0)
		}
		return false
	}
	t.useLink(link)
	t.choices = choices
	return true
}

// privateOnly is the answer in a group: where to find the bot instead.
func (b *Bot) privateOnly() string {
	if b.opts.BotUsername == "" {
		return "I only work in a private chat: open a chat with me and send /start."
	}
	return "I only work in a private chat: open a chat with @" + b.opts.BotUsername + " and send /start."
}

// addressed reports whether a group message is meant for the bot: a
// command (to no bot in particular, or to this one), a message that
// mentions the bot, or a reply to one of its messages. Groups are noisy:
// the rest is ignored without a word.
func (b *Bot) addressed(m *models.Message) bool {
	me := strings.ToLower(b.opts.BotUsername)
	if head, _, _ := strings.Cut(strings.TrimSpace(m.Text), " "); strings.HasPrefix(head, "/") && len(head) > 1 {
		_, to, at := strings.Cut(head, "@")
		return !at || (me != "" && strings.ToLower(to) == me)
	}
	if me == "" {
		return false
	}
	if r := m.ReplyToMessage; r != nil && r.From != nil && r.From.IsBot && strings.ToLower(r.From.Username) == me {
		return true
	}
	for _, s := range []string{m.Text, m.Caption} {
		if mentions(s, me) {
			return true
		}
	}
	return false
}

// mentions reports whether text holds "@name" as a whole word (name in
// lower case).
func mentions(text, name string) bool {
	text = strings.ToLower(text)
	for i := strings.Index(text, "@"+name); i >= 0; {
		end := i + 1 + len(name)
		if end == len(text) || !isNameByte(text[end]) {
			return true
		}
		j := strings.Index(text[end:], "@"+name)
		if j < 0 {
			break
		}
		i = end + j
	}
	return false
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_'
}

// useLink makes the turn act as the link's member.
func (t *turn) useLink(link *fieldops.TelegramLink) {
	t.link = link
	t.ctx = fieldops.NewContext(t.ctx, link.Actor())
	t.org, t.grants = nil, nil
}

// handleLink consumes a deep-link token: /start <token>.
func (t *turn) handleLink(token string) {
	link, err := t.b.svc.Telegram.Link(t.ctx, token, t.user)
	if err != nil && isRefusal(err) {
		t.send(fieldops.ErrorMessage(err), nil) // the token's own problem, said as the service says it
		return
	}
	if t.refused(err) {
		return
	}
	t.useLink(link)
	if !t.loadChoices() {
		return
	}
	t.send(fmt.Sprintf("Welcome, %s. You're linked to %s as %s.\n%s\nSend /today to see your jobs, /help for more.",
		firstName(link.UserName, t.user.FirstName), link.OrgName, link.Role.Label(), textLocationUse), nil)
	t.setCommands()
}

// loadChoices reads the organisations the account is linked to (for
// /switch and the menu) when the turn came to its link other than by
// resolve: a link just made or an organisation just chosen.
func (t *turn) loadChoices() bool {
	_, choices, err := t.b.svc.Telegram.Resolve(t.ctx, t.user.ID)
	if err != nil && !isRefusal(err) {
		fail(t.ctx, err)
		return false
	}
	t.choices = choices
	return true
}

// pickOrganisation asks which organisation the chat works for; msgID is
// the picker to edit (0: send a new one).
func (t *turn) pickOrganisation(choices []*fieldops.TelegramLink, msgID int) {
	if len(choices) == 0 {
		t.send(textLinkFirst, nil)
		return
	}
	rows := make([][]models.InlineKeyboardButton, 0, len(choices))
	for _, c := range choices {
		label := fmt.Sprintf("%s (%s)", c.OrgName, c.Role.Label())
		if t.link != nil && c.OrgID == t.link.OrgID {
			label = "✓ " + label
		}
		rows = append(rows, []models.InlineKeyboardButton{{
			Text:         truncate(label, 60),
			CallbackData: fmt.Sprintf("org:%d", c.OrgID),
		}})
	}
	t.sendOrEdit(msgID, "Which organisation are you working for now?", &models.InlineKeyboardMarkup{InlineKeyboard: rows})
}

// handleSwitch offers the organisations the account is linked to, the
// current one ticked.
func (t *turn) handleSwitch() {
	if len(t.choices) < 2 {
		t.send(fmt.Sprintf("You're working for %s. To work for another organisation, choose Link Telegram in its web panel: linking makes it the current one.", t.link.OrgName), nil)
		return
	}
	t.pickOrganisation(t.choices, 0)
}

// handleChooseOrganisation answers the organisation picker ("org:<id>").
func (t *turn) handleChooseOrganisation(orgID int64, msgID int) {
	link, err := t.b.svc.Telegram.ChooseOrganisation(t.ctx, t.user.ID, orgID)
	if err != nil && fieldops.ErrorCode(err) == fieldops.EUNAUTHORIZED {
		t.send(textLinkFirst, nil)
		return
	}
	if t.refused(err) {
		return
	}
	t.useLink(link)
	if !t.loadChoices() {
		return
	}
	t.sendOrEdit(msgID, fmt.Sprintf("Now working for %s as %s. Send /today to see your jobs.", link.OrgName, link.Role.Label()), nil)
	t.setCommands()
}

// organisation is the member's organisation (for its time zone).
func (t *turn) organisation() (*fieldops.Organisation, bool) {
	if t.org != nil {
		return t.org, true
	}
	o, err := t.b.svc.Orgs.FindOrganisation(t.ctx)
	if t.refused(err) {
		return nil, false
	}
	t.org = o
	return o, true
}

// zone is the organisation's time zone.
func (t *turn) zone() *time.Location {
	if o, ok := t.organisation(); ok {
		if loc, err := time.LoadLocation(o.TimeZone); err == nil {
			return loc
		}
	}
	if loc := t.b.Location(); loc != nil {
		return loc
	}
	return time.UTC
}

// memberGrants are the member's effective permissions, as the web panel
// computes them: the role with its overrides, where the plan has them.
// They only decide which buttons and commands are offered; the services
// still decide every action.
func (t *turn) memberGrants() (fieldops.Grants, bool) {
	if t.grants != nil {
		return *t.grants, true
	}
	me, err := t.b.svc.Members.FindMemberByID(t.ctx, t.self())
	if t.refused(err) {
		return fieldops.Grants{}, false
	}
	org, ok := t.organisation()
	if !ok {
		return fieldops.Grants{}, false
	}
	ovs := me.Overrides
	if p, err := fieldops.FindPlan(org.Plan); err == nil && !p.Overrides {
		ovs = nil
	}
	g := fieldops.EffectiveGrants(me.Role, ovs)
	t.grants = &g
	return g, true
}

// access is the member's grants as an Access, to ask Can about a job.
func (t *turn) access() (*fieldops.Access, bool) {
	g, ok := t.memberGrants()
	if !ok {
		return nil, false
	}
	return &fieldops.Access{OrgID: t.link.OrgID, UserID: t.self(), Role: t.link.Role, Grants: g}, true
}

// seesTeam reports whether the member's lists show the whole team's jobs
// rather than their own.
func seesTeam(g fieldops.Grants) bool {
	return g.Scope(fieldops.FlagJobView) == fieldops.ScopeAll && g.Scope(fieldops.FlagScheduleViewTeam) == fieldops.ScopeAll
}

// commandsFor lists the commands a member with g is offered.
func commandsFor(g fieldops.Grants, orgs int) []models.BotCommand {
	var cmds []models.BotCommand
	if g.Scope(fieldops.FlagJobView) != fieldops.ScopeNone {
		today, week := "Your jobs today", "Your jobs this week"
		if seesTeam(g) {
			today, week = "Jobs today", "Jobs this week"
		}
		cmds = append(cmds,
			models.BotCommand{Command: "today", Description: today},
			models.BotCommand{Command: "week", Description: week},
			models.BotCommand{Command: "upcoming", Description: "Jobs coming up"},
			models.BotCommand{Command: "job", Description: "Open a job by number: /job 42"},
		)
	}
	if g.Scope(fieldops.FlagCapacityView) == fieldops.ScopeAll {
		cmds = append(cmds, models.BotCommand{Command: "capacity", Description: "Who is free now"})
	}
	if orgs > 1 {
		cmds = append(cmds, models.BotCommand{Command: "switch", Description: "Work for another organisation"})
	}
	return append(cmds, models.BotCommand{Command: "help", Description: "What I can do"})
}

// setCommands queues the chat's command menu for the member's
// permissions.
func (t *turn) setCommands() {
	g, ok := t.memberGrants()
	if !ok {
		return
	}
	queue(t.ctx, "setMyCommands", map[string]any{
		"commands": commandsFor(g, len(t.choices)),
		"scope":    map[string]any{"type": "chat", "chat_id": t.user.ChatID},
	})
}

// handleHelp says what the member can do here, and refreshes the menu.
func (t *turn) handleHelp() {
	g, ok := t.memberGrants()
	if !ok {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s, %s.\n", t.link.OrgName, t.link.Role.Label())
	for _, c := range commandsFor(g, len(t.choices)) {
		fmt.Fprintf(&b, "/%s — %s\n", c.Command, c.Description)
	}
	if g.Scope(fieldops.FlagJobCheckIn) != fieldops.ScopeNone {
		b.WriteString("On a job card: Check in, Photos, Log defect, Complete.\n")
		b.WriteString("Photos: send them in reply to a job card, or while checked in.\n")
		b.WriteString("Text: a note on the job whose card it replies to, or on the job you are checked in on.")
	}
	t.send(strings.TrimSpace(b.String()), nil)
	t.setCommands()
}

// isRefusal reports whether err is a service refusal, answered to the
// user with its message, rather than a failure of ours.
func isRefusal(err error) bool {
	switch fieldops.ErrorCode(err) {
	case fieldops.EINVALID, fieldops.ENOTFOUND, fieldops.EFORBIDDEN, fieldops.ECONFLICT,
		fieldops.ELIMIT, fieldops.EUNAUTHORIZED:
		return true
	}
	return false
}

// refused answers err and reports true when err is not nil: a refusal
// with the service's message (an ended link with how to link again), any
// other error by failing the update so that it is retried.
func (t *turn) refused(err error) bool {
	switch {
	case err == nil:
		return false
	case fieldops.ErrorCode(err) == fieldops.EUNAUTHORIZED:
		t.send(textLinkEnded, removeKeyboard())
	case isRefusal(err):
		t.send(fieldops.ErrorMessage(err), nil)
	default:
		fail(t.ctx, err)
	}
	return true
}

// send queues a message to the chat.
func (t *turn) send(text string, markup models.ReplyMarkup) {
	p := &tgbot.SendMessageParams{ChatID: t.user.ChatID, Text: truncate(text, 4000)}
	if markup != nil {
		p.ReplyMarkup = markup
	}
	queue(t.ctx, "sendMessage", p)
}

// edit queues an edit of one of the bot's messages; markup nil removes
// its inline keyboard.
func (t *turn) edit(msgID int, text string, markup *models.InlineKeyboardMarkup) {
	p := &tgbot.EditMessageTextParams{ChatID: t.user.ChatID, MessageID: msgID, Text: truncate(text, 4000)}
	if markup != nil {
		p.ReplyMarkup = markup
	}
	queue(t.ctx, "editMessageText", p)
}

// editMarkup queues a change of a message's inline keyboard only.
func (t *turn) editMarkup(msgID int, markup *models.InlineKeyboardMarkup) {
	p := &tgbot.EditMessageReplyMarkupParams{ChatID: t.user.ChatID, MessageID: msgID}
	if markup != nil {
		p.ReplyMarkup = markup
	}
	queue(t.ctx, "editMessageReplyMarkup", p)
}

// sendOrEdit edits msgID when it is known, else sends.
func (t *turn) sendOrEdit(msgID int, text string, markup *models.InlineKeyboardMarkup) {
	if msgID != 0 {
		t.edit(msgID, text, markup)
		return
	}
	if markup != nil {
		t.send(text, markup)
		return
	}
	t.send(text, nil)
}

// state returns the pending question (Kind "" when none); ok is false
// when the lookup failed (answered).
func (t *turn) state() (fieldops.ChatState, bool) {
	s, err := t.b.svc.Telegram.ChatState(t.ctx, t.user.ID)
	if t.refused(err) {
		return fieldops.ChatState{}, false
	}
	return s, true
}

// setState replaces the pending question; a zero state clears it.
func (t *turn) setState(s fieldops.ChatState) bool {
	if s.Kind != "" && s.At.IsZero() {
		s.At = t.now()
	}
	return !t.refused(t.b.svc.Telegram.SetChatState(t.ctx, t.user.ID, s))
}

func firstName(name, fallback string) string {
	if f := strings.Fields(name); len(f) > 0 {
		return f[0]
	}
	if fallback != "" {
		return fallback
	}
	return "there"
}
