package telegramtest

import (
	"math"
	"strings"
	"time"

	"github.com/fieldops/fieldops"
)

// MaxSandboxUpload is the largest photo the sandbox accepts from a user:
// the size the bot could still download with getFile.
const MaxSandboxUpload = MaxDownloadSize

// Sandbox is the server seen as a fieldops.Sandbox: the admin panel's
// sandbox page chats with the bot through it as simulated users.
type Sandbox struct{ s *Server }

var _ fieldops.Sandbox = (*Sandbox)(nil)

// Sandbox returns the server as a fieldops.Sandbox.
func (s *Server) Sandbox() *Sandbox { return &Sandbox{s: s} }

// user returns the server's user for u, creating them (and their private
// chat with the bot) with u's id on first use.
func (x *Sandbox) user(u fieldops.SandboxUser) (*User, error) {
	if u.ID <= 0 {
		return nil, fieldops.Invalid("user", "Choose who to chat as.")
	}
	name := strings.TrimSpace(u.Name)
	if name == "" {
		name = "Sandbox user"
	}
	return x.s.AddUser(User{ID: u.ID, FirstName: name, Username: strings.TrimPrefix(u.Username, "@"), LanguageCode: "en"}), nil
}

// History returns the conversation in the user's private chat.
func (x *Sandbox) History(telegramUserID int64) []fieldops.SandboxMessage {
	s := x.s
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chats[telegramUserID]
	if c == nil || !c.private() {
		return nil
	}
	answers := map[int]string{}
	for _, id := range s.callbackOrder {
		if cb := s.callbacks[id]; cb.ChatID == telegramUserID && cb.Answered && cb.Text != "" {
			answers[cb.MessageID] = cb.Text
		}
	}
	out := make([]fieldops.SandboxMessage, 0, len(c.msgs))
	for _, st := range c.msgs {
		if st.deleted {
			continue
		}
		m := st.msg
		sm := fieldops.SandboxMessage{ID: m.ID, FromBot: st.fromBot, Text: m.Text, Photo: len(m.Photo) > 0,
			At: time.Unix(int64(m.Date), 0), Edited: m.EditDate != 0, Answer: answers[m.ID]}
		if sm.Text == "" {
			sm.Text = m.Caption
		}
		if m.Document != nil {
			sm.Document = m.Document.FileName
			if sm.Document == "" {
				sm.Document = "file"
			}
		}
		if l := m.Location; l != nil {
			sm.Location = &fieldops.SandboxLocation{Latitude: l.Latitude, Longitude: l.Longitude, AccuracyM: l.HorizontalAccuracy}
		}
		if st.fromBot {
			for _, row := range st.markup.Inline {
				var r []fieldops.SandboxButton
				for _, b := range row {
					r = append(r, fieldops.SandboxButton{Text: b.Text, Data: b.CallbackData, URL: b.URL})
				}
				sm.Buttons = append(sm.Buttons, r)
			}
		}
		out = append(out, sm)
	}
	return out
}

// Keyboard returns the reply keyboard the bot shows the user, or nil.
func (x *Sandbox) Keyboard(telegramUserID int64) [][]fieldops.SandboxKey {
	s := x.s
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chats[telegramUserID]
	if c == nil || c.keyboard == nil {
		return nil
	}
	var out [][]fieldops.SandboxKey
	for _, row := range c.keyboard.Keyboard {
		var r []fieldops.SandboxKey
		for _, b := range row {
			r = append(r, fieldops.SandboxKey{Text: b.Text, RequestLocation: b.RequestLocation})
		}
		out = append(out, r)
	}
	return out
}

// SendText sends a text message (a command too) from the user.
func (x *Sandbox) SendText(u fieldops.SandboxUser, text string) error {
	usr, err := x.user(u)
	if err != nil {
		return err
	}
	if strings.TrimSpace(text) == "" {
		return fieldops.Invalid("text", "Type a message first.")
	}
	if utf16Len(text) > MaxMessageLength {
		return fieldops.Invalid("text", "A Telegram message holds at most %d characters.", MaxMessageLength)
	}
	x.s.SendText(usr, text)
	return nil
}

// SendLocation shares a location from the user, as the "share location"
// button of a reply keyboard does.
func (x *Sandbox) SendLocation(u fieldops.SandboxUser, lat, lng, accuracyM float64) error {
	usr, err := x.user(u)
	if err != nil {
		return err
	}
	switch {
	case math.IsNaN(lat) || lat < -90 || lat > 90:
		return fieldops.Invalid("lat", "Latitude is between -90 and 90.")
	case math.IsNaN(lng) || lng < -180 || lng > 180:
		return fieldops.Invalid("lng", "Longitude is between -180 and 180.")
	case math.IsNaN(accuracyM) || accuracyM < 0 || accuracyM > 1500:
		return fieldops.Invalid("accuracy", "Accuracy is between 0 and 1500 metres (0: not given).")
	}
	var opts []MessageOption
	if accuracyM > 0 {
		opts = append(opts, Accuracy(accuracyM))
	}
	x.s.SendLocation(usr, lat, lng, opts...)
	return nil
}

// SendPhoto sends a photo with a caption from the user.
func (x *Sandbox) SendPhoto(u fieldops.SandboxUser, data []byte, caption string) error {
	usr, err := x.user(u)
	if err != nil {
		return err
	}
	switch {
	case len(data) == 0:
		return fieldops.Invalid("photo", "Choose a photo to send.")
	case len(data) > MaxSandboxUpload:
		return fieldops.Invalid("photo", "The photo is larger than %d MB.", MaxSandboxUpload>>20)
	case utf16Len(caption) > MaxCaptionLength:
		return fieldops.Invalid("caption", "A caption holds at most %d characters.", MaxCaptionLength)
	}
	x.s.SendPhoto(usr, data, caption, 0)
	return nil
}

// PressButton presses an inline button of one of the bot's messages.
func (x *Sandbox) PressButton(u fieldops.SandboxUser, messageID int, data string) error {
	usr, err := x.user(u)
	if err != nil {
		return err
	}
	if _, err := x.s.PressButton(usr, messageID, data); err != nil {
		return &fieldops.Error{Code: fieldops.EINVALID, Message: "That button is no longer there: the bot changed the message.", Err: err}
	}
	return nil
}
