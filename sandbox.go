package fieldops

import "time"

// The sandbox is the local stand-in for Telegram: when no bot token is
// configured, serve runs the local Bot API server in-process and the admin
// panel lets a person chat with the bot as a simulated Telegram user. The
// types live here so that the server (bot/telegramtest) and the panel
// (admin) share them without importing each other. It is a development
// feature: a deployment with a bot token has no sandbox.

// SandboxUser is a simulated Telegram user. The sandbox creates the user,
// with this id, name and username, on first use.
type SandboxUser struct {
	ID       int64
	Name     string
	Username string
}

// SandboxButton is an inline button under a bot message: it either
// carries callback data (pressed through the sandbox) or opens a URL.
type SandboxButton struct {
	Text string
	Data string
	URL  string
}

// SandboxKey is a button of the reply keyboard the bot shows in place of
// the phone's keyboard; RequestLocation shares the location when pressed.
type SandboxKey struct {
	Text            string
	RequestLocation bool
}

// SandboxLocation is a shared location.
type SandboxLocation struct {
	Latitude, Longitude float64
	AccuracyM           float64
}

// SandboxMessage is one message of a sandbox conversation, from the user
// or from the bot, as Telegram would show it now (edits applied, deleted
// messages left out).
type SandboxMessage struct {
	ID       int
	FromBot  bool
	Text     string // the text, or a photo's or a document's caption
	Photo    bool
	Document string // a document's file name
	Location *SandboxLocation
	Buttons  [][]SandboxButton // inline keyboard rows
	// Answer is the bot's answer to the last press of one of the
	// message's buttons (the toast Telegram shows), if any.
	Answer string
	At     time.Time
	Edited bool
}

// Sandbox is a conversation with the bot as a simulated Telegram user,
// each in the user's private chat with the bot. Sends return an EINVALID
// *Error for input Telegram would not let through.
type Sandbox interface {
	// History is the conversation with the Telegram user of this id,
	// both sides, oldest first; nil if they never wrote.
	History(telegramUserID int64) []SandboxMessage
	// Keyboard is the reply keyboard the bot currently shows the user,
	// row by row, or nil.
	Keyboard(telegramUserID int64) [][]SandboxKey
	SendText(u SandboxUser, text string) error
	SendLocation(u SandboxUser, lat, lng, accuracyM float64) error
	SendPhoto(u SandboxUser, data []byte, caption string) error
	// PressButton presses the inline button with this callback data on
	// the bot's message messageID.
	PressButton(u SandboxUser, messageID int, data string) error
}
