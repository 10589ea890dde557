package telegramtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-telegram/bot/models"
)

// DefaultToken is the bot token the server accepts unless WithToken says
// otherwise. Its numeric prefix, 123456, is the bot's user id, as with
// Telegram's tokens.
const DefaultToken = "123456:TESTfieldopsLocalBotApiToken0000000"

// Telegram's published limits, which the server enforces by default.
const (
	DefaultGlobalLimit    = 30       // messages per second across all chats
	DefaultChatLimit      = 1        // messages per second to one private chat
	DefaultGroupLimit     = 20       // messages per minute to one group
	MaxMessageLength      = 4096     // UTF-16 code units after entity parsing
	MaxCaptionLength      = 1024     // UTF-16 code units after entity parsing
	MaxCallbackDataLength = 64       // bytes
	MaxDownloadSize       = 20 << 20 // getFile refuses larger files
	MaxPhotoUploadSize    = 10 << 20 // sendPhoto refuses larger uploads
	maxLongPollTimeout    = 50       // seconds; the Bot API caps timeout here
)

// Option configures a Server.
type Option func(*config)

type config struct {
	token           string
	botUsername     string
	botFirstName    string
	global          int
	perChat         int
	perGroup        int
	second          time.Duration
	maxDownload     int64
	callbackTimeout time.Duration
	webhookRetry    time.Duration
	webhookClient   *http.Client
	firstUpdateID   int64
	addr            string
}

// WithToken sets the token requests must carry. Its numeric prefix becomes
// the bot's user id.
func WithToken(token string) Option { return func(c *config) { c.token = token } }

// WithBotName sets the bot's username and first name as getMe reports them.
func WithBotName(username, firstName string) Option {
	return func(c *config) { c.botUsername, c.botFirstName = username, firstName }
}

// WithLimits sets the flood limits: global messages per second across all
// chats, perChat messages per second to one private chat and perGroup
// messages per minute to one group, where a "second" lasts second (a minute
// is 60 of them). retry_after in 429 answers is counted in these seconds, so
// a client waits RetryAfter × RetryAfterUnit(). A limit of 0 disables that
// window. Use a short second to test limits without waiting for the clock.
func WithLimits(global, perChat, perGroup int, second time.Duration) Option {
	return func(c *config) {
		c.global, c.perChat, c.perGroup = global, perChat, perGroup
		if second > 0 {
			c.second = second
		}
	}
}

// WithoutLimits disables flood control, for tests and benchmarks that are
// not about it.
func WithoutLimits() Option { return WithLimits(0, 0, 0, 0) }

// WithMaxDownloadSize sets the size above which getFile answers "file is too
// big" (Telegram: 20 MB).
func WithMaxDownloadSize(n int64) Option { return func(c *config) { c.maxDownload = n } }

// WithCallbackTimeout sets how long a callback query can still be answered
// (Telegram documents no figure; the default is 15 s).
func WithCallbackTimeout(d time.Duration) Option { return func(c *config) { c.callbackTimeout = d } }

// WithWebhookRetryDelay sets the pause before a failed webhook delivery is
// retried (default 1 s).
func WithWebhookRetryDelay(d time.Duration) Option { return func(c *config) { c.webhookRetry = d } }

// WithWebhookClient sets the client that posts updates to the webhook, e.g.
// an httptest TLS server's Client().
func WithWebhookClient(hc *http.Client) Option { return func(c *config) { c.webhookClient = hc } }

// WithFirstUpdateID sets the id of the first update (default 100000001).
func WithFirstUpdateID(id int64) Option { return func(c *config) { c.firstUpdateID = id } }

// WithAddr sets the listen address (default "127.0.0.1:0", a free port).
func WithAddr(addr string) Option { return func(c *config) { c.addr = addr } }

// Server is a local Telegram Bot API server. It speaks the HTTP API that
// github.com/go-telegram/bot (and any other client) uses, and lets a test act
// as Telegram users and read what the bot sent. All methods are safe for
// concurrent use.
type Server struct {
	cfg       config
	me        models.User
	url       string
	hs        *http.Server
	ctx       context.Context // cancelled by Close
	cancel    context.CancelFunc
	closeOnce sync.Once
	inflight  sync.WaitGroup
	hookDone  chan struct{}

	mu      sync.Mutex
	closed  bool
	changed chan struct{} // closed and replaced on every change

	nextUpdateID int64
	pending      []pendingUpdate
	allowed      map[string]bool // nil: Telegram's default set
	polling      bool
	hook         *webhookState
	hookAttempts []WebhookAttempt

	users      map[int64]*User
	userOrder  []int64
	groups     map[int64]*Group
	chats      map[int64]*chat
	nextUserID int64
	nextGroup  int64

	files     map[string]*file // by file_id
	filePaths map[string]*file // by file_path
	nextFile  int

	sent          []*stored // bot messages, in order
	callbacks     map[string]*callbackState
	callbackOrder []string
	nextCallback  int64

	requests []Request
	commands map[string][]models.BotCommand
	lim      limiter
	tooMany  int
	faults   map[string][]fault
}

// New starts a server for a test and closes it when the test ends.
func New(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s, err := Start(opts...)
	if err != nil {
		tb.Fatalf("telegramtest: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Start starts a server outside a test (e.g. the sandbox); call Close.
func Start(opts ...Option) (*Server, error) {
	cfg := config{
		token:           DefaultToken,
		botUsername:     "fieldops_test_bot",
		botFirstName:    "Fieldops",
		global:          DefaultGlobalLimit,
		perChat:         DefaultChatLimit,
		perGroup:        DefaultGroupLimit,
		second:          time.Second,
		maxDownload:     MaxDownloadSize,
		callbackTimeout: 15 * time.Second,
		webhookRetry:    time.Second,
		firstUpdateID:   100000001,
		addr:            "127.0.0.1:0",
	}
	for _, o := range opts {
		o(&cfg)
	}
	idText, _, ok := strings.Cut(cfg.token, ":")
	botID, err := strconv.ParseInt(idText, 10, 64)
	if !ok || err != nil || botID <= 0 {
		return nil, fmt.Errorf("token %q does not start with a numeric bot id and a colon", cfg.token)
	}
	if cfg.webhookClient == nil {
		cfg.webhookClient = &http.Client{Timeout: 30 * time.Second}
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg,
		me: models.User{
			ID: botID, IsBot: true, FirstName: cfg.botFirstName, Username: cfg.botUsername,
			CanJoinGroups: true,
		},
		url:          "http://" + ln.Addr().String(),
		ctx:          ctx,
		cancel:       cancel,
		hookDone:     make(chan struct{}),
		changed:      make(chan struct{}),
		nextUpdateID: cfg.firstUpdateID,
		users:        map[int64]*User{},
		groups:       map[int64]*Group{},
		chats:        map[int64]*chat{},
		nextUserID:   1000001,
		nextGroup:    1001000000001,
		files:        map[string]*file{},
		filePaths:    map[string]*file{},
		callbacks:    map[string]*callbackState{},
		commands:     map[string][]models.BotCommand{},
		faults:       map[string][]fault{},
		lim: limiter{
			global: cfg.global, perChat: cfg.perChat, perGroup: cfg.perGroup,
			second: cfg.second, chats: map[int64][]time.Time{},
		},
	}
	s.hs = &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.hs.Serve(ln) }()
	go s.deliverWebhooks()
	return s, nil
}

// Close stops the server: pending long polls return, connections close.
// It is safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.broadcastLocked()
		s.mu.Unlock()
		s.cancel()
		_ = s.hs.Close()
		s.inflight.Wait()
		<-s.hookDone
	})
}

// URL is the base URL for bot.WithServerURL, e.g. "http://127.0.0.1:41234".
func (s *Server) URL() string { return s.url }

// Token is the bot token requests must carry.
func (s *Server) Token() string { return s.cfg.token }

// Me is the bot's own user, as getMe returns it.
func (s *Server) Me() models.User { return s.me }

// RetryAfterUnit is the length of one retry_after second: time.Second unless
// WithLimits scaled it.
func (s *Server) RetryAfterUnit() time.Duration { return s.cfg.second }

// Changed returns a channel that is closed at the next change of state (an
// update queued, a message sent or edited, a callback answered...). Take a
// new one after each wake-up.
func (s *Server) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *Server) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// apiError is a Bot API error answer.
type apiError struct {
	code        int
	description string
	retryAfter  int
}

func badRequest(format string, args ...any) *apiError {
	return &apiError{code: http.StatusBadRequest, description: "Bad Request: " + fmt.Sprintf(format, args...)}
}

func forbidden(desc string) *apiError {
	return &apiError{code: http.StatusForbidden, description: "Forbidden: " + desc}
}

func conflict(desc string) *apiError {
	return &apiError{code: http.StatusConflict, description: "Conflict: " + desc}
}

func tooManyRequests(retryAfter int) *apiError {
	return &apiError{
		code:        http.StatusTooManyRequests,
		description: fmt.Sprintf("Too Many Requests: retry after %d", retryAfter),
		retryAfter:  retryAfter,
	}
}

var (
	errUnauthorized = &apiError{code: http.StatusUnauthorized, description: "Unauthorized"}
	errNotFound     = &apiError{code: http.StatusNotFound, description: "Not Found"}
	errClientGone   = &apiError{code: 499, description: "client closed the connection"}
	errShutdown     = &apiError{code: http.StatusServiceUnavailable, description: "Service Unavailable"}
)

// statusError is the answer for an injected failure with this HTTP status.
func statusError(status int) *apiError {
	switch status {
	case http.StatusTooManyRequests:
		return tooManyRequests(1)
	case http.StatusBadRequest:
		return badRequest("injected failure")
	case http.StatusForbidden:
		return forbidden("injected failure")
	case http.StatusConflict:
		return conflict("injected failure")
	}
	desc := http.StatusText(status)
	if desc == "" {
		desc = "Error " + strconv.Itoa(status)
	}
	return &apiError{code: status, description: desc}
}

type response struct {
	OK          bool            `json:"ok"`
	Result      any             `json:"result,omitempty"`
	ErrorCode   int             `json:"error_code,omitempty"`
	Description string          `json:"description,omitempty"`
	Parameters  *responseParams `json:"parameters,omitempty"`
}

type responseParams struct {
	RetryAfter int `json:"retry_after,omitempty"`
}

func encodeResponse(result any, aerr *apiError) (int, []byte) {
	r := response{OK: true, Result: result}
	status := http.StatusOK
	if aerr != nil {
		status = aerr.code
		r = response{ErrorCode: aerr.code, Description: aerr.description}
		if aerr.retryAfter > 0 {
			r.Parameters = &responseParams{RetryAfter: aerr.retryAfter}
		}
	}
	body, err := json.Marshal(r)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"ok":false,"error_code":500,"description":"Internal Server Error: ` + strings.ReplaceAll(err.Error(), `"`, `'`) + `"}`)
	}
	return status, body
}

func writeResponse(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// dropConnection closes the client's connection without an answer.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		status, body := encodeResponse(nil, errShutdown)
		writeResponse(w, status, body)
		return
	}
	s.inflight.Add(1)
	s.mu.Unlock()
	defer s.inflight.Done()

	switch {
	case strings.HasPrefix(r.URL.Path, "/file/bot"):
		s.serveFile(w, r)
	case strings.HasPrefix(r.URL.Path, "/bot"):
		s.serveMethod(w, r)
	default:
		status, body := encodeResponse(nil, errNotFound)
		writeResponse(w, status, body)
	}
}

type handlerFunc func(s *Server, ctx context.Context, p *params) (any, *apiError)

// methods maps lower-cased method names (the Bot API ignores case) to handlers.
var methods = map[string]handlerFunc{
	"getme":                  (*Server).getMe,
	"getupdates":             (*Server).getUpdates,
	"setwebhook":             (*Server).setWebhook,
	"deletewebhook":          (*Server).deleteWebhook,
	"getwebhookinfo":         (*Server).getWebhookInfo,
	"sendmessage":            (*Server).sendMessage,
	"sendphoto":              (*Server).sendPhoto,
	"senddocument":           (*Server).sendDocument,
	"sendchataction":         (*Server).sendChatAction,
	"editmessagetext":        (*Server).editMessageText,
	"editmessagereplymarkup": (*Server).editMessageReplyMarkup,
	"deletemessage":          (*Server).deleteMessage,
	"answercallbackquery":    (*Server).answerCallbackQuery,
	"getfile":                (*Server).getFile,
	"setmycommands":          (*Server).setMyCommands,
	"getmycommands":          (*Server).getMyCommands,
	"deletemycommands":       (*Server).deleteMyCommands,
}

func (s *Server) serveMethod(w http.ResponseWriter, r *http.Request) {
	rec := Request{At: time.Now()}
	token, method, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/bot"), "/")
	method = strings.TrimPrefix(method, "test/") // bot.UseTestEnvironment
	rec.Method = method
	if token != s.cfg.token {
		s.answer(w, rec, nil, errUnauthorized, false)
		return
	}
	h, ok := methods[strings.ToLower(method)]
	if !ok {
		s.answer(w, rec, nil, errNotFound, false)
		return
	}
	p, err := parseParams(r)
	if err != nil {
		s.answer(w, rec, nil, badRequest("can't parse request: %v", err), false)
		return
	}
	rec.Params = p.summary()
	rec.ChatID = s.chatIDOf(p)

	f, faulty := s.popFault(method)
	if faulty {
		switch f.kind {
		case faultFail:
			s.answer(w, rec, nil, statusError(f.status), false)
			return
		case faultDelay:
			if !s.sleep(r.Context(), f.delay) {
				rec.Description = "client went away during the injected delay; request not applied"
				s.record(rec)
				return
			}
		}
	}
	result, aerr := h(s, r.Context(), p)
	if aerr == errClientGone {
		rec.Description = aerr.description
		s.record(rec)
		return
	}
	s.answer(w, rec, result, aerr, faulty && f.kind == faultLose)
}

// answer writes (or, for a lost response, withholds) the answer and logs it.
func (s *Server) answer(w http.ResponseWriter, rec Request, result any, aerr *apiError, lose bool) {
	status, body := encodeResponse(result, aerr)
	rec.Status = status
	if aerr != nil {
		rec.Description = aerr.description
	}
	rec.Dropped = lose
	s.mu.Lock()
	if status == http.StatusTooManyRequests {
		s.tooMany++
	}
	s.mu.Unlock()
	s.record(rec)
	if lose {
		dropConnection(w)
		return
	}
	writeResponse(w, status, body)
}

func (s *Server) record(rec Request) {
	rec.Duration = time.Since(rec.At)
	s.mu.Lock()
	s.requests = append(s.requests, rec)
	s.broadcastLocked()
	s.mu.Unlock()
}

// sleep waits d; false if the client or the server went away first.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.ctx.Done():
		return false
	}
}

func (s *Server) chatIDOf(p *params) int64 {
	v := p.str("chat_id")
	if v == "" {
		return 0
	}
	if id, err := strconv.ParseInt(v, 10, 64); err == nil {
		return id
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.chatByUsernameLocked(v); c != nil {
		return c.model.ID
	}
	return 0
}

func (s *Server) getMe(context.Context, *params) (any, *apiError) {
	return s.me, nil
}

// Request is one call the server received, as Requests reports it.
type Request struct {
	Method      string            // as called, e.g. "sendMessage"; "file" for a download
	ChatID      int64             // chat_id, resolved; 0 if none
	Params      map[string]string // fields as received; uploads as "<upload name, N bytes>"
	At          time.Time         // when the request arrived
	Duration    time.Duration     // until it was answered
	Status      int               // HTTP status; 0 if no answer was ever produced
	Description string            // error description, if any
	Dropped     bool              // applied, but the connection was closed instead of answering
}

// Requests returns every request answered so far (or abandoned by its
// client), in the order they finished: a long poll appears when it returns.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	copy(out, s.requests)
	return out
}

// RequestsFor returns the requests for one method (case-insensitive).
func (s *Server) RequestsFor(method string) []Request {
	var out []Request
	for _, r := range s.Requests() {
		if strings.EqualFold(r.Method, method) {
			out = append(out, r)
		}
	}
	return out
}

// TooManyRequests counts the 429 answers given so far.
func (s *Server) TooManyRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tooMany
}

type faultKind int

const (
	faultFail faultKind = iota
	faultDelay
	faultLose
)

type fault struct {
	kind   faultKind
	status int
	delay  time.Duration
}

func (s *Server) addFault(method string, f fault) {
	key := strings.ToLower(method)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[key] = append(s.faults[key], f)
}

func (s *Server) popFault(method string) (fault, bool) {
	key := strings.ToLower(method)
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.faults[key]
	if len(q) == 0 {
		return fault{}, false
	}
	s.faults[key] = q[1:]
	return q[0], true
}

// FailNext makes the next n calls of method fail with an HTTP status (e.g.
// 500, 502, 429 with retry_after 1) without applying them. Use "file" for
// file downloads. Faults for one method are used in the order they were
// added.
func (s *Server) FailNext(method string, n int, status int) {
	for range n {
		s.addFault(method, fault{kind: faultFail, status: status})
	}
}

// DelayNext holds the next call of method for d before handling it. If the
// client gives up meanwhile (a timeout), the request is not applied.
func (s *Server) DelayNext(method string, d time.Duration) {
	s.addFault(method, fault{kind: faultDelay, delay: d})
}

// LoseResponseNext applies the next call of method (the message is sent, the
// offset confirmed...) and then closes the connection instead of answering,
// so the client sees a transport error for a request that took effect.
func (s *Server) LoseResponseNext(method string) {
	s.addFault(method, fault{kind: faultLose})
}
