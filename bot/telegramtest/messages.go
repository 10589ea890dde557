package telegramtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-telegram/bot/models"
)

// stored is a message in a chat: the user's or the bot's.
type stored struct {
	chat      *chat
	msg       *models.Message // current state, as Telegram would return it
	fromBot   bool
	method    string
	source    string // text or caption exactly as the bot sent it
	parseMode string
	markup    ReplyMarkup
	fileID    string
	edits     int
	deleted   bool
	sentAt    time.Time
	editedAt  time.Time
}

// SentMessage is a message the bot sent, as it stands now.
type SentMessage struct {
	ChatID    int64
	MessageID int
	Method    string      // sendMessage, sendPhoto or sendDocument
	Text      string      // text or caption as the user sees it (markup parsed, edits applied)
	Source    string      // text or caption as the bot sent it, before parse_mode
	ParseMode string      // "", "HTML", "MarkdownV2" or "Markdown"
	Markup    ReplyMarkup // the reply_markup sent (an edit replaces the inline keyboard)
	ReplyTo   int         // the message it replies to, or 0
	FileID    string      // the photo's largest size or the document
	Edits     int         // successful edits
	Deleted   bool
	SentAt    time.Time
	EditedAt  time.Time
	Presses   []Callback      // button presses on this message and the bot's answers
	Message   *models.Message // the message as the Bot API returns it now
}

// ReplyMarkup is a message's parsed reply_markup.
type ReplyMarkup struct {
	Inline         [][]models.InlineKeyboardButton // inline keyboard under the message
	Keyboard       *models.ReplyKeyboardMarkup     // custom reply keyboard
	RemoveKeyboard bool                            // ReplyKeyboardRemove
	ForceReply     bool
}

// Buttons returns the inline buttons, row by row.
func (m ReplyMarkup) Buttons() []models.InlineKeyboardButton {
	var out []models.InlineKeyboardButton
	for _, row := range m.Inline {
		out = append(out, row...)
	}
	return out
}

// Button finds an inline button by its text.
func (m ReplyMarkup) Button(text string) (models.InlineKeyboardButton, bool) {
	for _, b := range m.Buttons() {
		if b.Text == text {
			return b, true
		}
	}
	return models.InlineKeyboardButton{}, false
}

func (m ReplyMarkup) buttonWithData(data string) (models.InlineKeyboardButton, bool) {
	for _, b := range m.Buttons() {
		if b.CallbackData == data && data != "" {
			return b, true
		}
	}
	return models.InlineKeyboardButton{}, false
}

// CallbackData lists the inline buttons' callback data.
func (m ReplyMarkup) CallbackData() []string {
	var out []string
	for _, b := range m.Buttons() {
		if b.CallbackData != "" {
			out = append(out, b.CallbackData)
		}
	}
	return out
}

// RequestsLocation reports whether the reply keyboard has a button that
// shares the user's location.
func (m ReplyMarkup) RequestsLocation() bool {
	if m.Keyboard == nil {
		return false
	}
	for _, row := range m.Keyboard.Keyboard {
		for _, b := range row {
			if b.RequestLocation {
				return true
			}
		}
	}
	return false
}

func (s *Server) snapshotLocked(st *stored) SentMessage {
	sm := SentMessage{
		ChatID: st.chat.model.ID, MessageID: st.msg.ID, Method: st.method,
		Text: st.msg.Text, Source: st.source, ParseMode: st.parseMode,
		Markup: clone(st.markup), FileID: st.fileID, Edits: st.edits, Deleted: st.deleted,
		SentAt: st.sentAt, EditedAt: st.editedAt, Message: cloneMessage(st.msg),
	}
	if sm.Text == "" {
		sm.Text = st.msg.Caption
	}
	if st.msg.ReplyToMessage != nil {
		sm.ReplyTo = st.msg.ReplyToMessage.ID
	}
	for _, id := range s.callbackOrder {
		if cb := s.callbacks[id]; cb.ChatID == sm.ChatID && cb.MessageID == sm.MessageID {
			sm.Presses = append(sm.Presses, cb.Callback)
		}
	}
	return sm
}

// Sent returns every message the bot sent, in order, across chats.
func (s *Server) Sent() []SentMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SentMessage, 0, len(s.sent))
	for _, st := range s.sent {
		out = append(out, s.snapshotLocked(st))
	}
	return out
}

// Messages returns the messages the bot sent to one chat, in order.
func (s *Server) Messages(chatID int64) []SentMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.messagesLocked(chatID)
}

func (s *Server) messagesLocked(chatID int64) []SentMessage {
	var out []SentMessage
	if c := s.chats[chatID]; c != nil {
		for _, st := range c.msgs {
			if st.fromBot {
				out = append(out, s.snapshotLocked(st))
			}
		}
	}
	return out
}

// Last returns the last message the bot sent to a chat.
func (s *Server) Last(chatID int64) (SentMessage, bool) {
	msgs := s.Messages(chatID)
	if len(msgs) == 0 {
		return SentMessage{}, false
	}
	return msgs[len(msgs)-1], true
}

// WaitSent waits until the bot has sent at least n messages to chatID and
// returns all of them; the test fails if that takes longer than timeout.
func (s *Server) WaitSent(tb testing.TB, chatID int64, n int, timeout time.Duration) []SentMessage {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		count := s.countLocked(chatID)
		ch := s.changed
		s.mu.Unlock()
		if count >= n {
			return s.Messages(chatID)
		}
		select {
		case <-ch:
		case <-deadline.C:
			var texts []string
			for _, m := range s.Messages(chatID) {
				texts = append(texts, m.Text)
			}
			tb.Fatalf("telegramtest: waited %v for %d messages to chat %d, got %d: %q", timeout, n, chatID, len(texts), texts)
			return nil
		}
	}
}

func (s *Server) countLocked(chatID int64) int {
	n := 0
	if c := s.chats[chatID]; c != nil {
		for _, st := range c.msgs {
			if st.fromBot {
				n++
			}
		}
	}
	return n
}

// SentCount is the number of messages the bot has sent, across chats.
func (s *Server) SentCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sent)
}

// chatForBotLocked resolves chat_id for a method the bot calls: the chat
// must exist and accept messages from the bot.
func (s *Server) chatForBotLocked(p *params) (*chat, *apiError) {
	v := p.str("chat_id")
	if v == "" {
		return nil, badRequest("chat_id is empty")
	}
	var c *chat
	if id, err := strconv.ParseInt(v, 10, 64); err == nil {
		c = s.chats[id]
	} else {
		c = s.chatByUsernameLocked(v)
	}
	if c == nil {
		return nil, badRequest("chat not found")
	}
	if c.blocked {
		return nil, forbidden("bot was blocked by the user")
	}
	return c, nil
}

func (s *Server) rateLocked(c *chat) *apiError {
	if retry, ok := s.lim.allow(time.Now(), c.model.ID, !c.private()); !ok {
		return tooManyRequests(retry)
	}
	return nil
}

// replyTargetLocked applies reply_parameters (or the older
// reply_to_message_id).
func replyTargetLocked(c *chat, p *params) (*models.Message, *apiError) {
	var rp models.ReplyParameters
	if err := p.json("reply_parameters", &rp); err != nil {
		return nil, badRequest("can't parse reply parameters JSON object")
	}
	if rp.MessageID == 0 {
		rp.MessageID = p.int("reply_to_message_id")
		rp.AllowSendingWithoutReply = p.bool("allow_sending_without_reply")
	}
	if rp.MessageID == 0 {
		return nil, nil
	}
	st := c.byID[rp.MessageID]
	if st == nil || st.deleted {
		if rp.AllowSendingWithoutReply {
			return nil, nil
		}
		return nil, badRequest("message to be replied not found")
	}
	return replyCopy(st.msg), nil
}

// sendLocked stores a message from the bot and returns it as the API does.
func (s *Server) sendLocked(c *chat, st *stored, markup ReplyMarkup) *models.Message {
	now := time.Now()
	me := s.me
	st.chat, st.fromBot, st.sentAt, st.markup = c, true, now, markup
	st.msg.ID = c.nextMessageIDLocked()
	st.msg.From = &me
	st.msg.Date = int(now.Unix())
	st.msg.Chat = c.model
	if markup.Inline != nil {
		st.msg.ReplyMarkup = &models.InlineKeyboardMarkup{InlineKeyboard: markup.Inline}
	}
	switch {
	case markup.Keyboard != nil:
		c.keyboard = clone(markup.Keyboard)
	case markup.RemoveKeyboard:
		c.keyboard = nil
	}
	c.addLocked(st)
	s.sent = append(s.sent, st)
	s.broadcastLocked()
	return cloneMessage(st.msg)
}

func validateText(text, parseMode string, limit int, what string) (string, *apiError) {
	plain, err := renderText(text, parseMode)
	if err != nil {
		return "", badRequest("can't parse entities: %v", err)
	}
	if what == "text" && strings.TrimSpace(plain) == "" {
		return "", badRequest("message text is empty")
	}
	if utf16Len(plain) > limit {
		if what == "text" {
			return "", badRequest("message is too long")
		}
		return "", badRequest("message caption is too long")
	}
	return plain, nil
}

func (s *Server) sendMessage(_ context.Context, p *params) (any, *apiError) {
	text, parseMode := p.str("text"), p.str("parse_mode")
	if text == "" {
		return nil, badRequest("message text is empty")
	}
	plain, aerr := validateText(text, parseMode, MaxMessageLength, "text")
	if aerr != nil {
		return nil, aerr
	}
	markup, aerr := parseMarkup(p.str("reply_markup"), false)
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, aerr := s.chatForBotLocked(p)
	if aerr != nil {
		return nil, aerr
	}
	reply, aerr := replyTargetLocked(c, p)
	if aerr != nil {
		return nil, aerr
	}
	if aerr := s.rateLocked(c); aerr != nil {
		return nil, aerr
	}
	st := &stored{method: "sendMessage", source: text, parseMode: parseMode,
		msg: &models.Message{Text: plain, ReplyToMessage: reply}}
	return s.sendLocked(c, st, markup), nil
}

func (s *Server) sendChatAction(_ context.Context, p *params) (any, *apiError) {
	if p.str("action") == "" {
		return nil, badRequest("action is empty") // wording approximate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, aerr := s.chatForBotLocked(p); aerr != nil {
		return nil, aerr
	}
	return true, nil
}

// botMessageLocked finds the bot's message to edit or delete.
func (s *Server) botMessageLocked(p *params, missing string) (*stored, *apiError) {
	if p.str("inline_message_id") != "" {
		return nil, badRequest("%s", missing) // the server has no inline messages
	}
	if p.str("message_id") == "" {
		return nil, badRequest("message identifier is not specified")
	}
	c, aerr := s.chatForBotLocked(p)
	if aerr != nil {
		return nil, aerr
	}
	st := c.byID[p.int("message_id")]
	if st == nil || st.deleted {
		return nil, badRequest("%s", missing)
	}
	return st, nil
}

func (s *Server) editMessageText(_ context.Context, p *params) (any, *apiError) {
	text, parseMode := p.str("text"), p.str("parse_mode")
	if text == "" {
		return nil, badRequest("message text is empty")
	}
	plain, aerr := validateText(text, parseMode, MaxMessageLength, "text")
	if aerr != nil {
		return nil, aerr
	}
	markup, aerr := parseMarkup(p.str("reply_markup"), true)
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, aerr := s.botMessageLocked(p, "message to edit not found")
	if aerr != nil {
		return nil, aerr
	}
	if !st.fromBot {
		return nil, badRequest("message can't be edited")
	}
	if st.msg.Text == "" {
		return nil, badRequest("there is no text in the message to edit")
	}
	if plain == st.msg.Text && sameInline(markup.Inline, st.markup.Inline) {
		return nil, errNotModified
	}
	m := *st.msg
	m.Text = plain
	st.source, st.parseMode = text, parseMode
	// An edit without reply_markup removes the inline keyboard.
	st.markup.Inline = markup.Inline
	m.ReplyMarkup = nil
	if markup.Inline != nil {
		m.ReplyMarkup = &models.InlineKeyboardMarkup{InlineKeyboard: markup.Inline}
	}
	return s.editedLocked(st, &m), nil
}

func (s *Server) editMessageReplyMarkup(_ context.Context, p *params) (any, *apiError) {
	markup, aerr := parseMarkup(p.str("reply_markup"), true)
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, aerr := s.botMessageLocked(p, "message to edit not found")
	if aerr != nil {
		return nil, aerr
	}
	if !st.fromBot {
		return nil, badRequest("message can't be edited")
	}
	if sameInline(markup.Inline, st.markup.Inline) {
		return nil, errNotModified
	}
	m := *st.msg
	st.markup.Inline = markup.Inline
	m.ReplyMarkup = nil
	if markup.Inline != nil {
		m.ReplyMarkup = &models.InlineKeyboardMarkup{InlineKeyboard: markup.Inline}
	}
	return s.editedLocked(st, &m), nil
}

var errNotModified = badRequest("message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message")

func (s *Server) editedLocked(st *stored, m *models.Message) *models.Message {
	now := time.Now()
	m.EditDate = int(now.Unix())
	st.msg = m
	st.edits++
	st.editedAt = now
	s.broadcastLocked()
	return cloneMessage(m)
}

func sameInline(a, b [][]models.InlineKeyboardButton) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func (s *Server) deleteMessage(_ context.Context, p *params) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, aerr := s.botMessageLocked(p, "message to delete not found")
	if aerr != nil {
		return nil, aerr
	}
	if !st.fromBot && !st.chat.private() {
		return nil, badRequest("message can't be deleted")
	}
	st.deleted = true
	s.broadcastLocked()
	return true, nil
}

func (s *Server) answerCallbackQuery(_ context.Context, p *params) (any, *apiError) {
	text := p.str("text")
	if utf16Len(text) > 200 {
		return nil, badRequest("MESSAGE_TOO_LONG")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cb := s.callbacks[p.str("callback_query_id")]
	if cb == nil || cb.Answered || time.Since(cb.PressedAt) > s.cfg.callbackTimeout {
		return nil, badRequest("query is too old and response timeout expired or query ID is invalid")
	}
	cb.Answered, cb.AnsweredAt = true, time.Now()
	cb.Text, cb.ShowAlert, cb.URL = text, p.bool("show_alert"), p.str("url")
	s.broadcastLocked()
	return true, nil
}

// inlineButtonFields are the optional fields of which an inline button must
// use exactly one.
var inlineButtonFields = []string{
	"url", "callback_data", "web_app", "login_url", "switch_inline_query",
	"switch_inline_query_current_chat", "switch_inline_query_chosen_chat",
	"copy_text", "callback_game", "pay",
}

// parseMarkup parses and checks a reply_markup field. Edits accept only an
// inline keyboard.
func parseMarkup(raw string, inlineOnly bool) (ReplyMarkup, *apiError) {
	var m ReplyMarkup
	if raw == "" {
		return m, nil
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &probe); err != nil {
		return m, badRequest("can't parse reply keyboard markup JSON object")
	}
	if _, ok := probe["inline_keyboard"]; ok {
		var rows [][]map[string]json.RawMessage
		if err := json.Unmarshal(probe["inline_keyboard"], &rows); err != nil {
			return m, badRequest("can't parse inline keyboard button: field \"inline_keyboard\" must be an Array of Arrays")
		}
		for _, row := range rows {
			for _, b := range row {
				if aerr := checkInlineButton(b); aerr != nil {
					return m, aerr
				}
			}
		}
		var ik models.InlineKeyboardMarkup
		if err := json.Unmarshal([]byte(raw), &ik); err != nil {
			return m, badRequest("can't parse inline keyboard button: %v", err)
		}
		m.Inline = ik.InlineKeyboard
		if m.Inline == nil {
			m.Inline = [][]models.InlineKeyboardButton{}
		}
		if len(m.Buttons()) == 0 {
			m.Inline = nil // an empty inline keyboard removes it
		}
		return m, nil
	}
	if inlineOnly {
		return m, badRequest("inline keyboard expected")
	}
	switch {
	case probe["keyboard"] != nil:
		var rk models.ReplyKeyboardMarkup
		if err := json.Unmarshal([]byte(raw), &rk); err != nil {
			return m, badRequest("can't parse keyboard button: %v", err)
		}
		for _, row := range rk.Keyboard {
			for _, b := range row {
				if b.Text == "" {
					return m, badRequest("can't parse keyboard button: Text must be non-empty")
				}
			}
		}
		m.Keyboard = &rk
	case probe["remove_keyboard"] != nil:
		m.RemoveKeyboard = true
	case probe["force_reply"] != nil:
		m.ForceReply = true
	default:
		return m, badRequest("can't parse reply keyboard markup JSON object")
	}
	return m, nil
}

func checkInlineButton(b map[string]json.RawMessage) *apiError {
	var text string
	if err := json.Unmarshal(b["text"], &text); err != nil || text == "" {
		return badRequest("can't parse inline keyboard button: Text must be non-empty")
	}
	used := 0
	for _, f := range inlineButtonFields {
		raw, ok := b[f]
		if !ok || string(raw) == "null" || string(raw) == "false" {
			continue
		}
		if f == "copy_text" { // go-telegram/bot always sends {"text":""}
			var ct models.CopyTextButton
			if json.Unmarshal(raw, &ct) == nil && ct.Text == "" {
				continue
			}
		}
		used++
	}
	if raw, ok := b["callback_data"]; ok {
		var data string
		if err := json.Unmarshal(raw, &data); err != nil || len(data) < 1 || len(data) > MaxCallbackDataLength {
			return badRequest("BUTTON_DATA_INVALID")
		}
	}
	if raw, ok := b["url"]; ok {
		var link string
		_ = json.Unmarshal(raw, &link)
		u, err := url.Parse(link)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "tg") {
			return badRequest("BUTTON_URL_INVALID")
		}
	}
	switch {
	case used == 0:
		return badRequest("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
	case used > 1:
		return badRequest("can't parse inline keyboard button: exactly one of the optional fields must be used")
	}
	return nil
}

// clone deep-copies a value through JSON.
func clone[T any](v T) T {
	var out T
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("telegramtest: clone: %v", err))
	}
	if err := json.Unmarshal(b, &out); err != nil {
		panic(fmt.Sprintf("telegramtest: clone: %v", err))
	}
	return out
}

func cloneMessage(m *models.Message) *models.Message {
	if m == nil {
		return nil
	}
	return clone(m)
}
