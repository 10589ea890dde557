package telegramtest

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-telegram/bot/models"
)

// User is a Telegram user the test acts as. Their private chat with the bot
// has the same id as the user.
type User struct {
	ID           int64
	FirstName    string
	LastName     string
	Username     string
	LanguageCode string
}

// ChatID is the id of the user's private chat with the bot.
func (u *User) ChatID() int64 { return u.ID }

// Model is the user as the Bot API describes them.
func (u *User) Model() models.User {
	return models.User{ID: u.ID, FirstName: u.FirstName, LastName: u.LastName, Username: u.Username, LanguageCode: u.LanguageCode}
}

// Group is a group chat (a supergroup) with the bot as a member.
type Group struct {
	ID       int64
	Title    string
	Username string
}

// chat is a private chat or a group, with every message in it.
type chat struct {
	model    models.Chat
	user     *User // private chats
	blocked  bool  // the user blocked the bot
	nextID   int
	msgs     []*stored
	byID     map[int]*stored
	keyboard *models.ReplyKeyboardMarkup // the reply keyboard currently shown
}

func (c *chat) private() bool { return c.model.Type == models.ChatTypePrivate }

func (c *chat) addLocked(st *stored) {
	c.msgs = append(c.msgs, st)
	c.byID[st.msg.ID] = st
}

func (c *chat) nextMessageIDLocked() int {
	c.nextID++
	return c.nextID
}

// NewUser creates a user who has started the bot, so the bot can write to
// them. Ids are assigned from 1000001 upwards.
func (s *Server) NewUser(firstName, username string) *User {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.users[s.nextUserID] != nil {
		s.nextUserID++
	}
	u := &User{ID: s.nextUserID, FirstName: firstName, Username: username, LanguageCode: "en"}
	s.nextUserID++
	s.addUserLocked(u)
	return u
}

// AddUser creates a user with the given id (and a private chat with the
// bot), or returns the existing user with that id.
func (s *Server) AddUser(u User) *User {
	if u.ID <= 0 {
		panic("telegramtest: AddUser needs a positive id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.users[u.ID]; old != nil {
		return old
	}
	nu := u
	s.addUserLocked(&nu)
	return &nu
}

func (s *Server) addUserLocked(u *User) {
	s.users[u.ID] = u
	s.userOrder = append(s.userOrder, u.ID)
	s.chats[u.ID] = &chat{
		model: models.Chat{ID: u.ID, Type: models.ChatTypePrivate, FirstName: u.FirstName, LastName: u.LastName, Username: u.Username},
		user:  u,
		byID:  map[int]*stored{},
	}
}

// Users returns every user, in creation order.
func (s *Server) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]User, 0, len(s.userOrder))
	for _, id := range s.userOrder {
		out = append(out, *s.users[id])
	}
	return out
}

// NewGroup creates a supergroup with the bot and members in it. Messages the
// bot sends there count against the 20-per-minute group limit.
func (s *Server) NewGroup(title string, members ...*User) *Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := &Group{ID: -s.nextGroup, Title: title}
	s.nextGroup++
	s.groups[g.ID] = g
	s.chats[g.ID] = &chat{
		model: models.Chat{ID: g.ID, Type: models.ChatTypeSupergroup, Title: title},
		byID:  map[int]*stored{},
	}
	_ = members // membership is not enforced: any user can write in any group
	return g
}

func (s *Server) chatByUsernameLocked(name string) *chat {
	name = strings.TrimPrefix(name, "@")
	if name == "" {
		return nil
	}
	for _, c := range s.chats {
		if strings.EqualFold(c.model.Username, name) {
			return c
		}
	}
	return nil
}

// MessageOption changes a message a user sends.
type MessageOption func(*msgOpts)

type msgOpts struct {
	group       *Group
	replyTo     int
	date        time.Time
	forwarded   bool
	forwardFrom *User
	forwardDate time.Time
	accuracy    float64
	livePeriod  int
	heading     int
	venue       *models.Venue
	caption     string
}

func collect(opts []MessageOption) *msgOpts {
	o := &msgOpts{}
	for _, f := range opts {
		f(o)
	}
	return o
}

// InGroup sends the message (or presses the button) in a group instead of
// the user's private chat.
func InGroup(g *Group) MessageOption { return func(o *msgOpts) { o.group = g } }

// ReplyTo makes the message a reply to message id in the same chat.
func ReplyTo(messageID int) MessageOption { return func(o *msgOpts) { o.replyTo = messageID } }

// Dated sets the message's date, e.g. in the past for a stale location.
func Dated(t time.Time) MessageOption { return func(o *msgOpts) { o.date = t } }

// Forwarded marks the message as forwarded (forward_origin): from a user,
// or from a hidden user if from is nil, originally sent at originalDate
// (zero: the message's date).
func Forwarded(from *User, originalDate time.Time) MessageOption {
	return func(o *msgOpts) { o.forwarded, o.forwardFrom, o.forwardDate = true, from, originalDate }
}

// Accuracy sets a location's horizontal_accuracy in metres (0–1500).
func Accuracy(metres float64) MessageOption { return func(o *msgOpts) { o.accuracy = metres } }

// LivePeriod makes a location live for this many seconds; follow it with
// EditLiveLocation.
func LivePeriod(seconds int) MessageOption { return func(o *msgOpts) { o.livePeriod = seconds } }

// Heading sets a live location's heading in degrees (1–360).
func Heading(degrees int) MessageOption { return func(o *msgOpts) { o.heading = degrees } }

// Venue sends the location as a venue: the message has both venue and
// location, as on Telegram.
func Venue(title, address string) MessageOption {
	return func(o *msgOpts) { o.venue = &models.Venue{Title: title, Address: address} }
}

// Caption sets a document's caption.
func Caption(text string) MessageOption { return func(o *msgOpts) { o.caption = text } }

func (s *Server) userChatLocked(u *User, g *Group) *chat {
	if u == nil {
		panic("telegramtest: nil user")
	}
	if s.users[u.ID] == nil {
		s.addUserLocked(u)
	}
	if g != nil {
		c := s.chats[g.ID]
		if c == nil {
			panic(fmt.Sprintf("telegramtest: unknown group %d", g.ID))
		}
		return c
	}
	return s.chats[u.ID]
}

// newUserMessageLocked starts a message from u with the options applied.
// A user who blocked the bot unblocks it by writing to it.
func (s *Server) newUserMessageLocked(u *User, o *msgOpts) (*chat, *models.Message) {
	c := s.userChatLocked(u, o.group)
	if c.private() && c.blocked {
		s.setBlockedLocked(u, false)
	}
	date := time.Now()
	if !o.date.IsZero() {
		date = o.date
	}
	from := u.Model()
	m := &models.Message{ID: c.nextMessageIDLocked(), From: &from, Date: int(date.Unix()), Chat: c.model}
	if o.forwarded {
		od := o.forwardDate
		if od.IsZero() {
			od = date
		}
		if o.forwardFrom != nil {
			m.ForwardOrigin = &models.MessageOrigin{Type: models.MessageOriginTypeUser, MessageOriginUser: &models.MessageOriginUser{
				Type: models.MessageOriginTypeUser, Date: int(od.Unix()), SenderUser: o.forwardFrom.Model(),
			}}
		} else {
			m.ForwardOrigin = &models.MessageOrigin{Type: models.MessageOriginTypeHiddenUser, MessageOriginHiddenUser: &models.MessageOriginHiddenUser{
				Type: models.MessageOriginTypeHiddenUser, Date: int(od.Unix()), SenderUserName: "Hidden User",
			}}
		}
	}
	if o.replyTo != 0 {
		if rm := c.byID[o.replyTo]; rm != nil && !rm.deleted {
			m.ReplyToMessage = replyCopy(rm.msg)
		}
	}
	return c, m
}

// replyCopy is m as it appears in reply_to_message: without its own reply.
func replyCopy(m *models.Message) *models.Message {
	cp := cloneMessage(m)
	cp.ReplyToMessage = nil
	return cp
}

func (s *Server) postUserMessageLocked(c *chat, m *models.Message) *models.Update {
	c.addLocked(&stored{chat: c, msg: m, sentAt: time.Now()})
	return s.enqueueLocked(kindMessage, &models.Update{Message: m})
}

// SendText sends a text message from u to the bot. Bot commands in it get
// bot_command entities, as on Telegram.
func (s *Server) SendText(u *User, text string, opts ...MessageOption) *models.Update {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, m := s.newUserMessageLocked(u, collect(opts))
	m.Text = text
	m.Entities = commandEntities(text)
	return s.postUserMessageLocked(c, m)
}

// SendCommand sends "/command payload" from u, e.g. SendCommand(u, "/start",
// "token") for a deep link. The leading slash is optional.
func (s *Server) SendCommand(u *User, command, payload string, opts ...MessageOption) *models.Update {
	text := "/" + strings.TrimPrefix(command, "/")
	if payload != "" {
		text += " " + payload
	}
	return s.SendText(u, text, opts...)
}

// SendLocation shares a location from u. Options: Accuracy, LivePeriod (a
// live location), Heading, Forwarded, Venue, Dated (a stale location),
// ReplyTo, InGroup.
func (s *Server) SendLocation(u *User, lat, lng float64, opts ...MessageOption) *models.Update {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := collect(opts)
	c, m := s.newUserMessageLocked(u, o)
	loc := models.Location{Latitude: lat, Longitude: lng, HorizontalAccuracy: o.accuracy, LivePeriod: o.livePeriod, Heading: o.heading}
	m.Location = &loc
	if o.venue != nil {
		v := *o.venue
		v.Location = loc
		m.Venue = &v
	}
	return s.postUserMessageLocked(c, m)
}

// EditLiveLocation moves u's live location in message messageID. The bot
// receives it as an edited_message. Accuracy and Heading options apply.
func (s *Server) EditLiveLocation(u *User, messageID int, lat, lng float64, opts ...MessageOption) (*models.Update, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := collect(opts)
	c := s.userChatLocked(u, o.group)
	st, err := ownMessageLocked(c, u, messageID)
	if err != nil {
		return nil, err
	}
	old := st.msg.Location
	if old == nil || old.LivePeriod == 0 {
		return nil, fmt.Errorf("message %d is not a live location", messageID)
	}
	if time.Now().After(time.Unix(int64(st.msg.Date), 0).Add(time.Duration(old.LivePeriod) * time.Second)) {
		return nil, fmt.Errorf("the live period of message %d has ended", messageID)
	}
	loc := *old
	loc.Latitude, loc.Longitude = lat, lng
	if o.accuracy != 0 {
		loc.HorizontalAccuracy = o.accuracy
	}
	if o.heading != 0 {
		loc.Heading = o.heading
	}
	m := *st.msg
	m.Location = &loc
	m.EditDate = int(time.Now().Unix())
	st.msg = &m
	return s.enqueueLocked(kindEditedMessage, &models.Update{EditedMessage: &m}), nil
}

// EditText edits u's text message; the bot receives an edited_message.
func (s *Server) EditText(u *User, messageID int, text string, opts ...MessageOption) (*models.Update, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.userChatLocked(u, collect(opts).group)
	st, err := ownMessageLocked(c, u, messageID)
	if err != nil {
		return nil, err
	}
	if st.msg.Text == "" {
		return nil, fmt.Errorf("message %d has no text", messageID)
	}
	m := *st.msg
	m.Text = text
	m.Entities = commandEntities(text)
	m.EditDate = int(time.Now().Unix())
	st.msg = &m
	return s.enqueueLocked(kindEditedMessage, &models.Update{EditedMessage: &m}), nil
}

func ownMessageLocked(c *chat, u *User, messageID int) (*stored, error) {
	st := c.byID[messageID]
	if st == nil || st.deleted || st.fromBot || st.msg.From == nil || st.msg.From.ID != u.ID {
		return nil, fmt.Errorf("no message %d from user %d in chat %d", messageID, u.ID, c.model.ID)
	}
	return st, nil
}

// SendPhoto sends a photo from u with a caption, as a reply to replyTo if it
// is not 0. Telegram offers several sizes: the largest serves data exactly
// (real Telegram re-encodes it and strips EXIF; send a document to keep
// it), smaller ones are downscaled JPEGs when data decodes as an image.
func (s *Server) SendPhoto(u *User, data []byte, caption string, replyTo int, opts ...MessageOption) *models.Update {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := collect(opts)
	if replyTo != 0 {
		o.replyTo = replyTo
	}
	c, m := s.newUserMessageLocked(u, o)
	m.Photo = s.photoSizesLocked(data)
	m.Caption = caption
	m.CaptionEntities = commandEntities(caption)
	return s.postUserMessageLocked(c, m)
}

// SendDocument sends a file from u, e.g. an image sent "as a file", whose
// bytes (EXIF included) getFile then serves unchanged. Caption and ReplyTo
// options apply.
func (s *Server) SendDocument(u *User, data []byte, filename, mimeType string, opts ...MessageOption) *models.Update {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := collect(opts)
	c, m := s.newUserMessageLocked(u, o)
	f := s.addFileLocked("documents", filename, mimeType, data)
	m.Document = &models.Document{FileID: f.id, FileUniqueID: f.uniqueID, FileName: filename, MimeType: f.mime, FileSize: f.size}
	m.Caption = o.caption
	m.CaptionEntities = commandEntities(o.caption)
	return s.postUserMessageLocked(c, m)
}

// PressButton presses the inline button with callbackData on the bot's
// message messageID in u's private chat (InGroup: in a group). The bot
// receives a callback_query carrying the message as it is now. It fails if
// the message has no such button; use SendCallback for crafted data.
func (s *Server) PressButton(u *User, messageID int, callbackData string, opts ...MessageOption) (*models.Update, error) {
	return s.callback(u, messageID, callbackData, true, opts)
}

// SendCallback sends a callback_query for the bot's message messageID with
// any data, whether or not a button carries it, as a modified client could.
func (s *Server) SendCallback(u *User, messageID int, callbackData string, opts ...MessageOption) (*models.Update, error) {
	return s.callback(u, messageID, callbackData, false, opts)
}

func (s *Server) callback(u *User, messageID int, data string, needButton bool, opts []MessageOption) (*models.Update, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.userChatLocked(u, collect(opts).group)
	st := c.byID[messageID]
	if st == nil || st.deleted || !st.fromBot {
		return nil, fmt.Errorf("no message %d from the bot in chat %d", messageID, c.model.ID)
	}
	if needButton {
		if _, ok := st.markup.buttonWithData(data); !ok {
			return nil, fmt.Errorf("message %d in chat %d has no button with callback data %q (buttons: %q)",
				messageID, c.model.ID, data, st.markup.CallbackData())
		}
	}
	s.nextCallback++
	id := strconv.FormatInt(4_000_000_000_000_000_000+s.nextCallback, 10)
	now := time.Now()
	s.callbacks[id] = &callbackState{Callback: Callback{
		ID: id, UserID: u.ID, ChatID: c.model.ID, MessageID: messageID, Data: data, PressedAt: now,
	}}
	s.callbackOrder = append(s.callbackOrder, id)
	q := &models.CallbackQuery{
		ID:           id,
		From:         u.Model(),
		Message:      models.MaybeInaccessibleMessage{Type: models.MaybeInaccessibleMessageTypeMessage, Message: cloneMessage(st.msg)},
		ChatInstance: strconv.FormatInt(c.model.ID*7919+1, 10),
		Data:         data,
	}
	return s.enqueueLocked(kindCallbackQuery, &models.Update{CallbackQuery: q}), nil
}

// BlockBot makes u block the bot: the bot receives a my_chat_member update
// (status "kicked") and anything it sends to u gets 403 "Forbidden: bot was
// blocked by the user" until u unblocks it or writes to it again.
func (s *Server) BlockBot(u *User) *models.Update {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.userChatLocked(u, nil)
	return s.setBlockedLocked(u, true)
}

// UnblockBot reverses BlockBot (a my_chat_member update, status "member").
func (s *Server) UnblockBot(u *User) *models.Update {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.userChatLocked(u, nil)
	return s.setBlockedLocked(u, false)
}

func (s *Server) setBlockedLocked(u *User, blocked bool) *models.Update {
	c := s.chats[u.ID]
	c.blocked = blocked
	me := s.me
	member := models.ChatMember{Type: models.ChatMemberTypeMember, Member: &models.ChatMemberMember{User: &me}}
	banned := models.ChatMember{Type: models.ChatMemberTypeBanned, Banned: &models.ChatMemberBanned{User: &me}}
	upd := &models.ChatMemberUpdated{Chat: c.model, From: u.Model(), Date: int(time.Now().Unix()), OldChatMember: member, NewChatMember: banned}
	if !blocked {
		upd.OldChatMember, upd.NewChatMember = banned, member
	}
	return s.enqueueLocked(kindMyChatMember, &models.Update{MyChatMember: upd})
}

// Callback is a callback query (a button press) and the bot's answer.
type Callback struct {
	ID         string
	UserID     int64
	ChatID     int64
	MessageID  int
	Data       string
	PressedAt  time.Time
	Answered   bool
	AnsweredAt time.Time
	Text       string // answer text shown to the user
	ShowAlert  bool
	URL        string
}

type callbackState struct {
	Callback
}

// Callbacks returns every callback query so far, in press order.
func (s *Server) Callbacks() []Callback {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Callback, 0, len(s.callbackOrder))
	for _, id := range s.callbackOrder {
		out = append(out, s.callbacks[id].Callback)
	}
	return out
}

// CallbackByID returns one callback query.
func (s *Server) CallbackByID(id string) (Callback, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cb, ok := s.callbacks[id]
	if !ok {
		return Callback{}, false
	}
	return cb.Callback, true
}

// History is the whole conversation in a chat, the user's messages and the
// bot's, in order, as Telegram would show it now (edits applied, deleted
// messages left out).
func (s *Server) History(chatID int64) []*models.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chats[chatID]
	if c == nil {
		return nil
	}
	var out []*models.Message
	for _, st := range c.msgs {
		if !st.deleted {
			out = append(out, cloneMessage(st.msg))
		}
	}
	return out
}

// Keyboard is the reply keyboard the bot currently shows in a chat (the last
// one sent and not removed), or nil.
func (s *Server) Keyboard(chatID int64) *models.ReplyKeyboardMarkup {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chats[chatID]
	if c == nil || c.keyboard == nil {
		return nil
	}
	return clone(c.keyboard)
}

// Chats returns the ids of every chat, private chats first.
func (s *Server) Chats() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int64, 0, len(s.chats))
	for id := range s.chats {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		if (ids[i] > 0) != (ids[j] > 0) {
			return ids[i] > 0
		}
		return ids[i] < ids[j]
	})
	return ids
}
