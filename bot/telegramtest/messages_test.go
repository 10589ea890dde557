package telegramtest_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"github.com/fieldops/fieldops/bot/telegramtest"
)

func TestInlineKeyboardAndCallback(t *testing.T) {
	srv := telegramtest.New(t)
	alice := srv.NewUser("Alice", "alice")
	ctx := context.Background()

	handled := make(chan string, 1)
	b := newBot(t, srv, bot.WithNotAsyncHandlers())
	b.RegisterHandler(bot.HandlerTypeCallbackQueryData, "job:", bot.MatchTypePrefix, func(ctx context.Context, b *bot.Bot, u *models.Update) {
		cq := u.CallbackQuery
		if _, err := b.AnswerCallbackQuery(ctx, &bot.AnswerCallbackQueryParams{CallbackQueryID: cq.ID, Text: "Checked in"}); err != nil {
			handled <- "answer: " + err.Error()
			return
		}
		msg := cq.Message.Message
		if _, err := b.EditMessageText(ctx, &bot.EditMessageTextParams{ChatID: msg.Chat.ID, MessageID: msg.ID, Text: "Job 42: checked in"}); err != nil {
			handled <- "edit: " + err.Error()
			return
		}
		handled <- cq.Data + " on " + msg.Text
	})

	keyboard := &models.InlineKeyboardMarkup{InlineKeyboard: [][]models.InlineKeyboardButton{{
		{Text: "Check in", CallbackData: "job:checkin:42"},
		{Text: "Map", URL: "https://maps.example/?q=51.5,-0.12"},
	}}}
	m, err := b.SendMessage(ctx, &bot.SendMessageParams{ChatID: alice.ChatID(), Text: "<b>Job 42</b> &amp; notes", ParseMode: models.ParseModeHTML, ReplyMarkup: keyboard})
	if err != nil {
		t.Fatal(err)
	}
	if m.ReplyMarkup == nil || m.Text != "Job 42 & notes" || m.From.ID != srv.Me().ID {
		t.Fatalf("returned message = %+v", m)
	}
	sent := srv.Messages(alice.ChatID())
	if len(sent) != 1 || sent[0].Source != "<b>Job 42</b> &amp; notes" || sent[0].ParseMode != "HTML" ||
		!reflect.DeepEqual(sent[0].Markup.CallbackData(), []string{"job:checkin:42"}) {
		t.Fatalf("recorded = %+v", sent)
	}
	if btn, ok := sent[0].Markup.Button("Map"); !ok || btn.URL == "" {
		t.Fatalf("map button = %+v", btn)
	}

	run(t, b)
	if _, err := srv.PressButton(alice, m.ID, "job:checkout:42"); err == nil {
		t.Fatal("pressing a button that does not exist succeeded")
	}
	pressed, err := srv.PressButton(alice, m.ID, "job:checkin:42")
	if err != nil {
		t.Fatal(err)
	}
	if got := receive(t, handled); got != "job:checkin:42 on Job 42 & notes" {
		t.Fatalf("handler: %s", got)
	}

	cbs := srv.Callbacks()
	if len(cbs) != 1 || cbs[0].ID != pressed.CallbackQuery.ID || !cbs[0].Answered || cbs[0].Text != "Checked in" || cbs[0].MessageID != m.ID {
		t.Fatalf("callbacks = %+v", cbs)
	}
	last, _ := srv.Last(alice.ChatID())
	if len(last.Presses) != 1 || !last.Presses[0].Answered || last.Presses[0].Data != "job:checkin:42" {
		t.Fatalf("presses on the card = %+v", last.Presses)
	}
	if last.Text != "Job 42: checked in" || last.Edits != 1 || last.Markup.Inline != nil || last.Message.EditDate == 0 {
		t.Fatalf("after edit = %+v", last)
	}

	t.Run("ErrAnswerTwice", func(t *testing.T) {
		_, err := b.AnswerCallbackQuery(ctx, &bot.AnswerCallbackQueryParams{CallbackQueryID: pressed.CallbackQuery.ID})
		if !errors.Is(err, bot.ErrorBadRequest) || !strings.Contains(err.Error(), "query is too old") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("ErrNotModified", func(t *testing.T) {
		_, err := b.EditMessageText(ctx, &bot.EditMessageTextParams{ChatID: alice.ChatID(), MessageID: m.ID, Text: "Job 42: checked in"})
		if !errors.Is(err, bot.ErrorBadRequest) || !strings.Contains(err.Error(), "message is not modified") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("OKEditReplyMarkup", func(t *testing.T) {
		if _, err := b.EditMessageReplyMarkup(ctx, &bot.EditMessageReplyMarkupParams{ChatID: alice.ChatID(), MessageID: m.ID, ReplyMarkup: keyboard}); err != nil {
			t.Fatal(err)
		}
		if last, _ := srv.Last(alice.ChatID()); len(last.Markup.Buttons()) != 2 || last.Edits != 2 {
			t.Fatalf("after markup edit = %+v", last.Markup)
		}
	})
	t.Run("ErrEditUnknownMessage", func(t *testing.T) {
		_, err := b.EditMessageText(ctx, &bot.EditMessageTextParams{ChatID: alice.ChatID(), MessageID: 999, Text: "x"})
		if !errors.Is(err, bot.ErrorBadRequest) || !strings.Contains(err.Error(), "message to edit not found") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("OKCraftedCallback", func(t *testing.T) {
		crafted, err := srv.SendCallback(alice, m.ID, "job:checkin:99")
		if err != nil || crafted.CallbackQuery.Data != "job:checkin:99" {
			t.Fatalf("%+v %v", crafted, err)
		}
		receive(t, handled)
	})
}

func TestSendMessageValidation(t *testing.T) {
	srv := telegramtest.New(t, telegramtest.WithoutLimits())
	alice := srv.NewUser("Alice", "alice")
	b := newBot(t, srv)
	ctx := context.Background()
	button := func(data string) *models.InlineKeyboardMarkup {
		return &models.InlineKeyboardMarkup{InlineKeyboard: [][]models.InlineKeyboardButton{{{Text: "B", CallbackData: data}}}}
	}

	tests := []struct {
		name   string
		params bot.SendMessageParams
		want   string // error text; "" for success
		text   string // the text the user sees, on success
	}{
		{"ErrEmpty", bot.SendMessageParams{Text: ""}, "Bad Request: message text is empty", ""},
		{"ErrBlank", bot.SendMessageParams{Text: "<b> </b>", ParseMode: models.ParseModeHTML}, "Bad Request: message text is empty", ""},
		{"OK4096", bot.SendMessageParams{Text: strings.Repeat("a", 4096)}, "", strings.Repeat("a", 4096)},
		{"ErrTooLong", bot.SendMessageParams{Text: strings.Repeat("a", 4097)}, "Bad Request: message is too long", ""},
		{"OKEmojiCountsTwice", bot.SendMessageParams{Text: strings.Repeat("😀", 2048)}, "", strings.Repeat("😀", 2048)},
		{"ErrEmojiTooLong", bot.SendMessageParams{Text: strings.Repeat("😀", 2049)}, "Bad Request: message is too long", ""},
		{"ErrHTMLUnclosed", bot.SendMessageParams{Text: "<b>bold", ParseMode: models.ParseModeHTML}, `can't parse entities: Can't find end tag corresponding to start tag "b"`, ""},
		{"ErrHTMLUnescaped", bot.SendMessageParams{Text: "a < b", ParseMode: models.ParseModeHTML}, "can't parse entities", ""},
		{"ErrHTMLUnsupportedTag", bot.SendMessageParams{Text: "a<br>b", ParseMode: models.ParseModeHTML}, `Unsupported start tag "br"`, ""},
		{"OKHTMLEscaped", bot.SendMessageParams{Text: `<a href="https://x.example/?a=1&amp;b=2">a &lt; b</a>`, ParseMode: models.ParseModeHTML}, "", "a < b"},
		{"ErrMarkdownV2Reserved", bot.SendMessageParams{Text: "Done.", ParseMode: models.ParseModeMarkdown}, `Character '.' is reserved`, ""},
		{"OKMarkdownV2", bot.SendMessageParams{Text: "*Job* 42\\. [map](https://m.example/\\(1\\))", ParseMode: models.ParseModeMarkdown}, "", "Job 42. map"},
		{"OKCallbackData64", bot.SendMessageParams{Text: "x", ReplyMarkup: button(strings.Repeat("d", 64))}, "", "x"},
		{"ErrCallbackData65", bot.SendMessageParams{Text: "x", ReplyMarkup: button(strings.Repeat("d", 65))}, "Bad Request: BUTTON_DATA_INVALID", ""},
		{"ErrTextOnlyButton", bot.SendMessageParams{Text: "x", ReplyMarkup: &models.InlineKeyboardMarkup{InlineKeyboard: [][]models.InlineKeyboardButton{{{Text: "B"}}}}}, "Text buttons are unallowed", ""},
		{"ErrChatNotFound", bot.SendMessageParams{ChatID: int64(42), Text: "x"}, "Bad Request: chat not found", ""},
		{"ErrReplyNotFound", bot.SendMessageParams{Text: "x", ReplyParameters: &models.ReplyParameters{MessageID: 9999}}, "Bad Request: message to be replied not found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.params
			if p.ChatID == nil {
				p.ChatID = alice.ChatID()
			}
			m, err := b.SendMessage(ctx, &p)
			if tt.want != "" {
				if !errors.Is(err, bot.ErrorBadRequest) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Text != tt.text {
				t.Fatalf("text = %q, want %q", m.Text, tt.text)
			}
		})
	}

	t.Run("OKReplyKeyboardRequestLocation", func(t *testing.T) {
		kb := &models.ReplyKeyboardMarkup{Keyboard: [][]models.KeyboardButton{{{Text: "Share location", RequestLocation: true}}}, OneTimeKeyboard: true, ResizeKeyboard: true}
		if _, err := b.SendMessage(ctx, &bot.SendMessageParams{ChatID: alice.ChatID(), Text: "Where are you?", ReplyMarkup: kb}); err != nil {
			t.Fatal(err)
		}
		last, _ := srv.Last(alice.ChatID())
		if !last.Markup.RequestsLocation() || srv.Keyboard(alice.ChatID()) == nil {
			t.Fatalf("markup = %+v", last.Markup)
		}
		if _, err := b.SendMessage(ctx, &bot.SendMessageParams{ChatID: alice.ChatID(), Text: "Thanks", ReplyMarkup: &models.ReplyKeyboardRemove{RemoveKeyboard: true}}); err != nil {
			t.Fatal(err)
		}
		if srv.Keyboard(alice.ChatID()) != nil {
			t.Fatal("keyboard still shown after ReplyKeyboardRemove")
		}
	})

	t.Run("OKReplyAndDelete", func(t *testing.T) {
		in := srv.SendText(alice, "photo of the board")
		m, err := b.SendMessage(ctx, &bot.SendMessageParams{ChatID: alice.ChatID(), Text: "Saved", ReplyParameters: &models.ReplyParameters{MessageID: in.Message.ID}})
		if err != nil || m.ReplyToMessage == nil || m.ReplyToMessage.Text != "photo of the board" {
			t.Fatalf("reply = %+v, %v", m, err)
		}
		if ok, err := b.DeleteMessage(ctx, &bot.DeleteMessageParams{ChatID: alice.ChatID(), MessageID: m.ID}); !ok || err != nil {
			t.Fatalf("delete: %v", err)
		}
		if last, _ := srv.Last(alice.ChatID()); !last.Deleted || last.ReplyTo != in.Message.ID {
			t.Fatalf("last = %+v", last)
		}
	})
}

func TestCommands(t *testing.T) {
	srv := telegramtest.New(t)
	engineer := srv.NewUser("Eve", "eve")
	manager := srv.NewUser("Max", "max")
	b := newBot(t, srv)
	ctx := context.Background()
	today := models.BotCommand{Command: "today", Description: "Today's jobs"}
	capacity := models.BotCommand{Command: "capacity", Description: "Who is free now"}

	if _, err := b.SetMyCommands(ctx, &bot.SetMyCommandsParams{Commands: []models.BotCommand{today}}); err != nil {
		t.Fatal(err)
	}
	scope := &models.BotCommandScopeChat{ChatID: manager.ID}
	if _, err := b.SetMyCommands(ctx, &bot.SetMyCommandsParams{Commands: []models.BotCommand{today, capacity}, Scope: scope}); err != nil {
		t.Fatal(err)
	}
	if got := srv.Commands(nil); !reflect.DeepEqual(got, []models.BotCommand{today}) {
		t.Fatalf("default = %+v", got)
	}
	if got := srv.Commands(scope); !reflect.DeepEqual(got, []models.BotCommand{today, capacity}) {
		t.Fatalf("chat scope = %+v", got)
	}
	if got := srv.CommandsFor(manager); len(got) != 2 {
		t.Fatalf("manager sees %+v", got)
	}
	if got := srv.CommandsFor(engineer); !reflect.DeepEqual(got, []models.BotCommand{today}) {
		t.Fatalf("engineer sees %+v", got)
	}
	if got, err := b.GetMyCommands(ctx, &bot.GetMyCommandsParams{Scope: scope}); err != nil || len(got) != 2 {
		t.Fatalf("getMyCommands = %+v, %v", got, err)
	}

	t.Run("ErrInvalidCommand", func(t *testing.T) {
		_, err := b.SetMyCommands(ctx, &bot.SetMyCommandsParams{Commands: []models.BotCommand{{Command: "Today", Description: "x"}}})
		if !errors.Is(err, bot.ErrorBadRequest) || !strings.Contains(err.Error(), "BOT_COMMAND_INVALID") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("ErrUnknownChatScope", func(t *testing.T) {
		_, err := b.SetMyCommands(ctx, &bot.SetMyCommandsParams{Commands: []models.BotCommand{today}, Scope: &models.BotCommandScopeChat{ChatID: 77}})
		if !errors.Is(err, bot.ErrorBadRequest) || !strings.Contains(err.Error(), "chat not found") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestBlockedBot(t *testing.T) {
	srv := telegramtest.New(t)
	alice := srv.NewUser("Alice", "alice")
	b := newBot(t, srv)
	ctx := context.Background()

	upd := srv.BlockBot(alice)
	if mc := upd.MyChatMember; mc == nil || mc.NewChatMember.Type != models.ChatMemberTypeBanned || mc.From.ID != alice.ID {
		t.Fatalf("my_chat_member = %+v", upd.MyChatMember)
	}
	_, err := b.SendMessage(ctx, &bot.SendMessageParams{ChatID: alice.ChatID(), Text: "New job"})
	if !errors.Is(err, bot.ErrorForbidden) || !strings.Contains(err.Error(), "bot was blocked by the user") {
		t.Fatalf("err = %v", err)
	}
	// Writing to the bot unblocks it.
	srv.SendCommand(alice, "/start", "")
	if _, err := b.SendMessage(ctx, &bot.SendMessageParams{ChatID: alice.ChatID(), Text: "Welcome back"}); err != nil {
		t.Fatal(err)
	}
}
