// Package telegramtest is a local Telegram Bot API server for tests and the
// sandbox. Telegram cannot be reached from our machines, so fieldops talks to
// this server instead: a real HTTP server on loopback that speaks the Bot API
// the way github.com/go-telegram/bot calls it (POST /bot<token>/<method> with
// multipart/form-data and JSON-encoded fields, answers shaped
// {"ok":true,"result":...} or {"ok":false,"error_code":...,"description":...},
// downloads at /file/bot<token>/<file_path>). It also accepts JSON bodies,
// urlencoded forms and query strings, so curl and other clients work too.
//
// # Starting it
//
//	srv := telegramtest.New(t)                     // closed when the test ends
//	b, err := bot.New(srv.Token(), bot.WithServerURL(srv.URL()))
//
// Outside a test (the sandbox), Start returns a server to Close. Requests
// with another token get 401 "Unauthorized"; unknown methods get 404 "Not
// Found".
//
// # Acting as users
//
//	alice := srv.NewUser("Alice", "alice")        // has a private chat with the bot
//	srv.SendCommand(alice, "/start", linkToken)
//	srv.SendText(alice, "hello")
//	upd := srv.SendLocation(alice, 51.5, -0.12, telegramtest.Accuracy(12), telegramtest.LivePeriod(900))
//	srv.EditLiveLocation(alice, upd.Message.ID, 51.6, -0.12)   // an edited_message
//	srv.SendLocation(alice, 51.5, -0.12, telegramtest.Forwarded(bob, time.Time{}))
//	srv.SendLocation(alice, 51.5, -0.12, telegramtest.Venue("Cafe", "1 High St"))
//	srv.SendLocation(alice, 51.5, -0.12, telegramtest.Dated(time.Now().Add(-10*time.Minute)))
//	srv.SendPhoto(alice, jpegBytes, "meter cupboard", cardMessageID)
//	srv.SendDocument(alice, jpegBytes, "IMG_0001.jpg", "image/jpeg") // keeps EXIF
//	srv.PressButton(alice, card.MessageID, "job:checkin:42")          // the button must exist
//	srv.SendCallback(alice, card.MessageID, "job:checkin:99")         // crafted data
//	srv.BlockBot(alice)                                               // the bot's sends to alice get 403
//	crew := srv.NewGroup("Crew", alice, bob)                          // InGroup(crew) option
//
// Each call returns the update it queued (update ids increase by one). The
// bot receives updates by long polling getUpdates (offset, limit 1–100,
// timeout up to 50 s; a second concurrent poller gets 409) or, after
// setWebhook, by POSTs to its URL carrying X-Telegram-Bot-Api-Secret-Token,
// retried until the webhook answers 2xx. Plain http:// webhook URLs are
// accepted so tests can listen on loopback; Telegram requires HTTPS.
//
// # Reading what the bot did
//
//	msgs := srv.WaitSent(t, alice.ChatID(), 1, 5*time.Second)
//	msgs[0].Text, msgs[0].Markup.Button("Check in"), msgs[0].Markup.RequestsLocation()
//	msgs[0].Presses            // button presses on that message and the bot's answers
//	srv.Callbacks()            // every press, answered or not
//	srv.Commands(&models.BotCommandScopeChat{ChatID: alice.ID}), srv.CommandsFor(alice)
//	srv.Requests()             // every request answered: method, chat, time, status
//	srv.Pending(), srv.Polling() // unconfirmed updates; whether a long poll is open
//	srv.History(chatID)        // the whole conversation, both sides (for the sandbox)
//	srv.Keyboard(chatID)       // the reply keyboard the user currently sees
//	srv.Changed()              // a channel closed at the next change, to wait on
//
// Messages reflect edits (editMessageText, editMessageReplyMarkup; an edit
// without reply_markup removes the inline keyboard, as on Telegram) and
// deletions. Text is checked as Telegram checks it: 1–4096 UTF-16 code units
// after parse_mode (HTML, MarkdownV2, Markdown) is parsed, markup errors
// answered "can't parse entities: ...", callback data 1–64 bytes.
//
// # Limits
//
// The server enforces Telegram's flood limits with sliding windows: 30
// messages per second across chats, 1 per second to one private chat, 20
// per minute to one group. Only sends (sendMessage, sendPhoto, sendDocument)
// count; edits and callback answers do not. A send over a limit gets 429
// "Too Many Requests: retry after N" with parameters.retry_after N, which
// go-telegram/bot returns as *bot.TooManyRequestsError; TooManyRequests
// counts them. Tests shrink the clock rather than wait for it:
//
//	srv := telegramtest.New(t, telegramtest.WithLimits(30, 1, 20, 50*time.Millisecond))
//
// makes a "second" 50 ms long (and a minute 3 s); retry_after is then counted
// in those seconds, so a client waits RetryAfter × srv.RetryAfterUnit().
// WithoutLimits turns flood control off. getFile refuses files over 20 MB
// ("file is too big"; WithMaxDownloadSize changes the figure).
//
// # Failures
//
//	srv.FailNext("sendMessage", 2, 502)       // answered 502, not applied
//	srv.DelayNext("sendMessage", time.Second) // a client timeout; not applied if the client gives up
//	srv.LoseResponseNext("sendMessage")       // applied, then the connection is dropped
//	srv.LoseResponseNext("getUpdates")        // offset confirmed, batch never received
//
// Differences from Telegram worth knowing: photos are not re-encoded (the
// largest size is the uploaded bytes); sendPhoto/sendDocument accept uploads
// and file_ids but do not fetch URLs; webhooks are delivered one update at a
// time; a second concurrent getUpdates is refused while the first keeps
// waiting; group membership and privacy mode are not modelled.
package telegramtest
