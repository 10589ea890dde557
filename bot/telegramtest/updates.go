package telegramtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"github.com/go-telegram/bot/models"
)

type pendingUpdate struct {
	id   int64
	kind string
	body json.RawMessage
}

// Update kinds the server creates.
const (
	kindMessage       = "message"
	kindEditedMessage = "edited_message"
	kindCallbackQuery = "callback_query"
	kindMyChatMember  = "my_chat_member"
)

// defaultExcluded are the kinds Telegram leaves out unless allowed_updates
// names them.
var defaultExcluded = map[string]bool{"chat_member": true, "message_reaction": true, "message_reaction_count": true}

func (s *Server) allowedLocked(kind string) bool {
	if s.allowed == nil {
		return !defaultExcluded[kind]
	}
	return s.allowed[kind]
}

// enqueueLocked gives u the next update id and queues it for getUpdates or
// the webhook. As on Telegram, allowed_updates filters when the update is
// created. It returns the update as the bot will see it.
func (s *Server) enqueueLocked(kind string, u *models.Update) *models.Update {
	u.ID = s.nextUpdateID
	s.nextUpdateID++
	body, err := json.Marshal(u)
	if err != nil {
		panic(fmt.Sprintf("telegramtest: encode update: %v", err))
	}
	if s.allowedLocked(kind) {
		s.pending = append(s.pending, pendingUpdate{id: u.ID, kind: kind, body: body})
	}
	s.broadcastLocked()
	var out models.Update
	if err := json.Unmarshal(body, &out); err != nil {
		panic(fmt.Sprintf("telegramtest: decode update: %v", err))
	}
	return &out
}

// confirmLocked applies getUpdates' offset: a positive offset confirms every
// update below it; a negative one keeps only the last -offset updates.
func (s *Server) confirmLocked(offset int64) {
	switch {
	case offset > 0:
		i := 0
		for i < len(s.pending) && s.pending[i].id < offset {
			i++
		}
		s.pending = s.pending[i:]
	case offset < 0:
		if keep := int(-offset); keep < len(s.pending) {
			s.pending = s.pending[len(s.pending)-keep:]
		}
	}
}

// Pending is the number of updates queued and not yet confirmed (or, with a
// webhook, not yet delivered).
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// Polling reports whether a getUpdates request is being served right now.
func (s *Server) Polling() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.polling
}

func (s *Server) getUpdates(ctx context.Context, p *params) (any, *apiError) {
	limit := p.int("limit")
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	timeout := min(max(p.int("timeout"), 0), maxLongPollTimeout)
	var allowed []string
	if err := p.json("allowed_updates", &allowed); err != nil {
		return nil, badRequest("can't parse allowed updates: %v", err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hook != nil {
		return nil, conflict("can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first")
	}
	if s.polling {
		return nil, conflict("terminated by other getUpdates request; make sure that only one bot instance is running")
	}
	s.polling = true
	defer func() { s.polling = false }()

	if p.has("allowed_updates") {
		s.setAllowedLocked(allowed)
	}
	s.confirmLocked(p.int64("offset"))

	deadline := time.Now().Add(time.Duration(timeout) * time.Second)
	for {
		if s.closed {
			return []json.RawMessage{}, nil
		}
		if s.hook != nil {
			return nil, conflict("terminated by setWebhook request")
		}
		if len(s.pending) > 0 {
			n := min(limit, len(s.pending))
			batch := make([]json.RawMessage, n)
			for i := range n {
				batch[i] = s.pending[i].body
			}
			return batch, nil
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return []json.RawMessage{}, nil
		}
		ch := s.changed
		s.mu.Unlock()
		t := time.NewTimer(wait)
		gone := false
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
			gone = true
		}
		t.Stop()
		s.mu.Lock()
		if gone {
			return nil, errClientGone
		}
	}
}

func (s *Server) setAllowedLocked(kinds []string) {
	if len(kinds) == 0 {
		s.allowed = nil
		return
	}
	s.allowed = map[string]bool{}
	for _, k := range kinds {
		s.allowed[k] = true
	}
}

type webhookState struct {
	url         string
	secret      string
	maxConns    int
	lastErrDate time.Time
	lastErr     string
}

// WebhookAttempt is one POST of an update to the webhook.
type WebhookAttempt struct {
	UpdateID int64
	URL      string
	At       time.Time
	Status   int    // the webhook's HTTP status; 0 if the request failed
	Error    string // transport error, if any
	Secret   string // the X-Telegram-Bot-Api-Secret-Token header sent
}

// WebhookAttempts returns every webhook delivery attempt so far.
func (s *Server) WebhookAttempts() []WebhookAttempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]WebhookAttempt, len(s.hookAttempts))
	copy(out, s.hookAttempts)
	return out
}

var secretTokenPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func (s *Server) setWebhook(ctx context.Context, p *params) (any, *apiError) {
	hook := p.str("url")
	if hook == "" {
		return s.deleteWebhook(ctx, p)
	}
	u, err := url.Parse(hook)
	if err != nil || u.Host == "" {
		return nil, badRequest("bad webhook: Failed to resolve host: Name or service not known")
	}
	// Telegram requires HTTPS on ports 443, 80, 88 or 8443; a local server
	// accepts plain HTTP on any port so that tests can listen on loopback.
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, badRequest("bad webhook: An HTTPS URL must be provided for webhook")
	}
	secret := p.str("secret_token")
	if len(secret) > 256 {
		return nil, badRequest("secret token is too long")
	}
	if secret != "" && !secretTokenPattern.MatchString(secret) {
		return nil, badRequest("secret token contains unallowed characters")
	}
	maxConns := p.int("max_connections")
	if maxConns == 0 {
		maxConns = 40
	}
	if maxConns < 1 || maxConns > 100 {
		return nil, badRequest("max_connections must be between 1 and 100")
	}
	var allowed []string
	if err := p.json("allowed_updates", &allowed); err != nil {
		return nil, badRequest("can't parse allowed updates: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.has("allowed_updates") {
		s.setAllowedLocked(allowed)
	}
	if p.bool("drop_pending_updates") {
		s.pending = nil
	}
	s.hook = &webhookState{url: hook, secret: secret, maxConns: maxConns}
	s.broadcastLocked()
	return true, nil
}

func (s *Server) deleteWebhook(_ context.Context, p *params) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.bool("drop_pending_updates") {
		s.pending = nil
	}
	s.hook = nil
	s.broadcastLocked()
	return true, nil
}

func (s *Server) getWebhookInfo(context.Context, *params) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	info := models.WebhookInfo{PendingUpdateCount: len(s.pending)}
	if s.hook != nil {
		info.URL = s.hook.url
		info.MaxConnections = s.hook.maxConns
		if s.hook.lastErr != "" {
			info.LastErrorDate = int(s.hook.lastErrDate.Unix())
			info.LastErrorMessage = s.hook.lastErr
		}
	}
	if s.allowed != nil {
		for k := range s.allowed {
			info.AllowedUpdates = append(info.AllowedUpdates, k)
		}
	}
	return info, nil
}

// deliverWebhooks posts queued updates, one at a time and in order, while a
// webhook is set. A delivery that fails (transport error or non-2xx) is
// retried after the retry delay; the update stays queued until then.
func (s *Server) deliverWebhooks() {
	defer close(s.hookDone)
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		if s.hook == nil || len(s.pending) == 0 {
			ch := s.changed
			s.mu.Unlock()
			select {
			case <-ch:
			case <-s.ctx.Done():
				return
			}
			continue
		}
		hook := *s.hook
		upd := s.pending[0]
		s.mu.Unlock()

		att := WebhookAttempt{UpdateID: upd.id, URL: hook.url, At: time.Now(), Secret: hook.secret}
		status, err := s.postUpdate(hook, upd.body)
		att.Status = status
		ok := err == nil && status >= 200 && status < 300
		s.mu.Lock()
		if err != nil {
			att.Error = err.Error()
		}
		s.hookAttempts = append(s.hookAttempts, att)
		if ok {
			if len(s.pending) > 0 && s.pending[0].id == upd.id {
				s.pending = s.pending[1:]
			}
		} else if s.hook != nil {
			s.hook.lastErrDate = time.Now()
			if err != nil {
				s.hook.lastErr = err.Error()
			} else {
				s.hook.lastErr = fmt.Sprintf("Wrong response from the webhook: %d %s", status, http.StatusText(status))
			}
		}
		s.broadcastLocked()
		s.mu.Unlock()
		if !ok {
			select {
			case <-time.After(s.cfg.webhookRetry):
			case <-s.ctx.Done():
				return
			}
		}
	}
}

func (s *Server) postUpdate(hook webhookState, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, hook.url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if hook.secret != "" {
		req.Header.Set("X-Telegram-Bot-Api-Secret-Token", hook.secret)
	}
	resp, err := s.cfg.webhookClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}
