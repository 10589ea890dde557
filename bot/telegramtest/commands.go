package telegramtest

import (
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-telegram/bot/models"
)

var commandPattern = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)

type scopeJSON struct {
	Type   string          `json:"type"`
	ChatID json.RawMessage `json:"chat_id"`
	UserID int64           `json:"user_id"`
}

// scopeKeyLocked turns a BotCommandScope (JSON) and a language code into the
// key commands are stored under.
func (s *Server) scopeKeyLocked(raw, lang string) (string, *apiError) {
	sc := scopeJSON{Type: "default"}
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &sc); err != nil {
			return "", badRequest("can't parse BotCommandScope JSON object")
		}
	}
	key := sc.Type
	switch sc.Type {
	case "default", "all_private_chats", "all_group_chats", "all_chat_administrators":
	case "chat", "chat_administrators", "chat_member":
		var id int64
		var name string
		if json.Unmarshal(sc.ChatID, &id) != nil {
			if json.Unmarshal(sc.ChatID, &name) != nil {
				return "", badRequest("chat_id is empty")
			}
			if n, err := strconv.ParseInt(name, 10, 64); err == nil {
				id = n
			} else if c := s.chatByUsernameLocked(name); c != nil {
				id = c.model.ID
			}
		}
		if s.chats[id] == nil {
			return "", badRequest("chat not found")
		}
		key += ":" + strconv.FormatInt(id, 10)
		if sc.Type == "chat_member" {
			key += ":" + strconv.FormatInt(sc.UserID, 10)
		}
	default:
		return "", badRequest("unsupported bot command scope type %q", sc.Type)
	}
	if lang != "" {
		key += "|" + lang
	}
	return key, nil
}

func (s *Server) setMyCommands(_ context.Context, p *params) (any, *apiError) {
	var cmds []models.BotCommand
	if err := p.json("commands", &cmds); err != nil {
		return nil, badRequest("can't parse commands JSON object")
	}
	if len(cmds) > 100 {
		return nil, badRequest("too many commands specified")
	}
	for _, c := range cmds {
		if !commandPattern.MatchString(c.Command) {
			return nil, badRequest("BOT_COMMAND_INVALID")
		}
		if n := utf16Len(c.Description); n < 1 || n > 256 {
			return nil, badRequest("command description must be non-empty and at most 256 characters")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key, aerr := s.scopeKeyLocked(p.str("scope"), p.str("language_code"))
	if aerr != nil {
		return nil, aerr
	}
	if len(cmds) == 0 {
		delete(s.commands, key)
	} else {
		s.commands[key] = cmds
	}
	s.broadcastLocked()
	return true, nil
}

func (s *Server) getMyCommands(_ context.Context, p *params) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key, aerr := s.scopeKeyLocked(p.str("scope"), p.str("language_code"))
	if aerr != nil {
		return nil, aerr
	}
	cmds := s.commands[key]
	if cmds == nil {
		cmds = []models.BotCommand{}
	}
	return cmds, nil
}

func (s *Server) deleteMyCommands(_ context.Context, p *params) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key, aerr := s.scopeKeyLocked(p.str("scope"), p.str("language_code"))
	if aerr != nil {
		return nil, aerr
	}
	delete(s.commands, key)
	s.broadcastLocked()
	return true, nil
}

// Commands returns the commands set for exactly this scope (nil: the
// default scope) and no language code, e.g.
// Commands(&models.BotCommandScopeChat{ChatID: u.ID}).
func (s *Server) Commands(scope models.BotCommandScope) []models.BotCommand {
	raw := ""
	if scope != nil {
		b, err := scope.MarshalCustom()
		if err != nil {
			return nil
		}
		raw = string(b)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key, aerr := s.scopeKeyLocked(raw, "")
	if aerr != nil {
		return nil
	}
	return clone(s.commands[key])
}

// CommandsFor returns the command menu u sees in their private chat, found
// as Telegram does: the chat scope, then all private chats, then the
// default, each first with u's language code.
func (s *Server) CommandsFor(u *User) []models.BotCommand {
	id := strconv.FormatInt(u.ID, 10)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, base := range []string{"chat:" + id, "all_private_chats", "default"} {
		for _, key := range []string{base + "|" + strings.TrimSpace(u.LanguageCode), base} {
			if cmds, ok := s.commands[key]; ok {
				return clone(cmds)
			}
		}
	}
	return nil
}
