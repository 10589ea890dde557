package bot

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"io"
	"net/http"
	"regexp"

	"github.com/fieldops/fieldops"
)

// maxUpdateSize bounds a webhook request's body; updates are a few KB.
const maxUpdateSize = 1 << 20

var secretPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)

// validSecret reports whether s is a secret_token Telegram accepts.
func validSecret(s string) bool { return secretPattern.MatchString(s) }

// WebhookHandler receives updates from Telegram in webhook mode, on any
// instance: a POST whose X-Telegram-Bot-Api-Secret-Token matches the
// secret (compared in constant time; 401 otherwise, and nothing is
// stored) is stored in the inbox, and answered 200 only once that has
// committed. If the store fails the answer is 503, so Telegram delivers
// the update again. A repeated update is stored once (update_id is
// unique). The leader handles what is stored.
func (b *Bot) WebhookHandler() http.Handler {
	want := sha256.Sum256([]byte(b.opts.WebhookSecret))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := sha256.Sum256([]byte(r.Header.Get("X-Telegram-Bot-Api-Secret-Token")))
		if b.opts.WebhookSecret == "" || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxUpdateSize+1))
		if err != nil {
			http.Error(w, "cannot read the request", http.StatusBadRequest)
			return
		}
		if len(body) > maxUpdateSize {
			http.Error(w, "update too large", http.StatusRequestEntityTooLarge)
			return
		}
		u, err := inboundOf(body)
		if err != nil {
			http.Error(w, "not an update", http.StatusBadRequest)
			return
		}
		if err := b.svc.Inbox.Store(r.Context(), []fieldops.InboundUpdate{u}, 0); err != nil {
			b.log.Error("webhook: storing an update", "update", u.UpdateID, "err", err)
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		b.step("intake.stored")
		b.wake()
		w.WriteHeader(http.StatusOK)
	})
}

// setWebhook points Telegram at the webhook (the leader does it at the
// start of each Run), retrying until it is accepted.
func (b *Bot) setWebhook(ctx context.Context) {
	_ = b.retry(ctx, "setWebhook", func() error {
		_, err := b.call(ctx, "setWebhook", map[string]any{
			"url": b.opts.WebhookURL, "secret_token": b.opts.WebhookSecret,
			"allowed_updates": allowedUpdates, "drop_pending_updates": false,
		})
		return err
	})
}
