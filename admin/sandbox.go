package admin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/fieldops/fieldops"
)

// The sandbox page chats with the bot as a member's Telegram account when
// no bot token is configured (Options.Sandbox): serve then runs the local
// Bot API server in-process, so the whole product works without Telegram.
// It is a development tool, absent from a deployment with a bot token.
//
// In the sandbox each membership's Telegram account has a fixed id
// (sandboxTelegramID), so the panel knows whose chat is whose without
// asking the store, and the chats match the links in the database across
// restarts. A member links it like a real account: Link
// Telegram, then "Open in the sandbox" sends /start with the token.

// sandboxTelegramBase is where sandbox Telegram ids begin.
const sandboxTelegramBase = 7_000_000_000

// maxSandboxPhoto bounds a photo upload: the size the bot can still
// download from the Bot API.
const maxSandboxPhoto = 20 << 20

// Sandbox locations are prefilled with the engineer's job site of the day,
// else central London.
const defaultLat, defaultLng = 51.5074, -0.1278

// sandboxTelegramID is the Telegram id of a membership's sandbox account.
// It is one per membership, not per person: the same person in two
// organisations has two sandbox accounts, so an Admin chatting as them in
// one organisation can never act through their link in the other. Ids
// stay below 2^53 (Telegram's bound) for user ids below 2^24 and
// organisation ids below 2^28; beyond that they wrap within the sandbox's
// own range and could meet, which no sandbox (a development aid) reaches.
func sandboxTelegramID(orgID, userID int64) int64 {
	const perOrg = 1 << 24
	return sandboxTelegramBase + (orgID%(1<<28))*perOrg + userID%perOrg
}

// sandboxUser is a member's simulated Telegram account.
func sandboxUser(m *fieldops.Member) fieldops.SandboxUser {
	first, _, _ := strings.Cut(strings.TrimSpace(m.Name), " ")
	var b strings.Builder
	for _, r := range strings.ToLower(m.Name) {
		switch {
		case r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "_"):
			b.WriteByte('_')
		}
	}
	username := strings.Trim(b.String(), "_")
	if len(username) > 24 {
		username = username[:24]
	}
	if len(username) < 5 || username[0] < 'a' {
		username = strings.TrimSuffix("user_"+username, "_")
	}
	return fieldops.SandboxUser{ID: sandboxTelegramID(m.OrgID, m.UserID), Name: first, Username: username}
}

// sandboxAllowed refuses the sandbox to members without settings.edit: it
// acts as other people. No domain service decides this, since the sandbox
// is outside the domain and exists only without a bot token; the panel
// checks the member's grants, as it does to hide links.
func sandboxAllowed(me *signedInMember) error {
	if me.grants.Scope(fieldops.FlagSettingsEdit) == fieldops.ScopeNone {
		return fieldops.Errorf(fieldops.EFORBIDDEN, "Only members who can change the organisation's settings can use the sandbox: it acts as other people.")
	}
	return nil
}

// sandboxTarget is the member whose Telegram account the request chats
// as: one of the organisation (the service finds only those), with no
// more permissions than the signed-in member.
func (s *Server) sandboxTarget(r *http.Request) (*fieldops.Member, error) {
	ctx := r.Context()
	me, _ := memberFrom(ctx)
	if err := sandboxAllowed(me); err != nil {
		return nil, err
	}
	id, ok := pathID(r)
	if !ok {
		return nil, fieldops.Errorf(fieldops.ENOTFOUND, "Team member not found.")
	}
	m, err := s.svc.Members.FindMemberByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := mayActAs(me, m); err != nil {
		return nil, err
	}
	return m, nil
}

// mayActAs refuses to act as a member who holds permissions the signed-in
// member lacks (an Admin as an Owner, say).
func mayActAs(me *signedInMember, m *fieldops.Member) error {
	ovs := m.Overrides
	if p, err := fieldops.FindPlan(me.org.Plan); err == nil && !p.Overrides {
		ovs = nil
	}
	if m.UserID != me.member.UserID && !me.grants.Covers(fieldops.EffectiveGrants(m.Role, ovs)) {
		return fieldops.Errorf(fieldops.EFORBIDDEN, "You cannot chat as %s: they can do things you cannot.", m.Name)
	}
	return nil
}

// sandboxView is the sandbox's index: whom to chat as.
type sandboxView struct {
	Rows []sandboxRow
	MeID int64
}

type sandboxRow struct {
	Member  *fieldops.Member
	User    fieldops.SandboxUser
	CanChat bool
}

func (s *Server) handleSandbox(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	me, _ := memberFrom(ctx)
	if err := sandboxAllowed(me); err != nil {
		s.fail(w, r, err)
		return
	}
	members, err := s.svc.Members.FindMembers(ctx, fieldops.MemberFilter{})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v := sandboxView{MeID: me.member.UserID}
	for _, m := range members {
		v.Rows = append(v.Rows, sandboxRow{Member: m, User: sandboxUser(m), CanChat: mayActAs(me, m) == nil})
	}
	s.render(w, r, http.StatusOK, "sandbox", &view{Title: "Sandbox", Data: v})
}

// handleSandboxStart opens a member's own Telegram link in the sandbox:
// their sandbox account sends /start with the token, as tapping the deep
// link does. Any member may, for their own account; those who may use
// the sandbox land in the chat.
func (s *Server) handleSandboxStart(w http.ResponseWriter, r *http.Request) {
	me, _ := memberFrom(r.Context())
	token := strings.TrimSpace(r.PostFormValue("token"))
	if token == "" || strings.ContainsAny(token, " \n\r\t") {
		s.fail(w, r, fieldops.Invalid("token", "The link is incomplete: make a new one on the Telegram page."))
		return
	}
	if err := s.opt.Sandbox.SendText(sandboxUser(me.member), "/start "+token); err != nil {
		s.fail(w, r, err)
		return
	}
	if sandboxAllowed(me) == nil {
		http.Redirect(w, r, fmt.Sprintf("/sandbox/%d", me.member.UserID), http.StatusSeeOther)
		return
	}
	s.back(w, r, "/telegram", "Your sandbox Telegram account sent the link to the bot; reload this page in a moment to see it linked.")
}

// sandboxChatView is a conversation in the sandbox.
type sandboxChatView struct {
	Member     *fieldops.Member
	User       fieldops.SandboxUser
	History    []fieldops.SandboxMessage
	Keyboard   [][]fieldops.SandboxKey
	Version    string
	Lat, Lng   float64
	Accuracy   float64
	SiteNote   string // which site the location is prefilled with
	Text       string // the text box, kept after an error
	MaxPhotoMB int
}

// HistoryURL is the address the history polls, with the version shown.
func (v *sandboxChatView) HistoryURL() string {
	return fmt.Sprintf("/sandbox/%d/history?v=%s", v.Member.UserID, v.Version)
}

// load reads the conversation and its version: a hash of what the page
// shows, so that polling answers 204 while nothing changed.
func (v *sandboxChatView) load(sb fieldops.Sandbox) {
	v.History = sb.History(v.User.ID)
	v.Keyboard = sb.Keyboard(v.User.ID)
	b, _ := json.Marshal(struct {
		H []fieldops.SandboxMessage
		K [][]fieldops.SandboxKey
	}{v.History, v.Keyboard})
	sum := sha256.Sum256(b)
	v.Version = hex.EncodeToString(sum[:8])
}

func (s *Server) handleSandboxChat(w http.ResponseWriter, r *http.Request) {
	s.renderSandboxChat(w, r, http.StatusOK, nil, "")
}

// renderSandboxChat shows the chat page, with the error of a send that
// failed and the text that was not sent.
func (s *Server) renderSandboxChat(w http.ResponseWriter, r *http.Request, status int, failed error, text string) {
	m, err := s.sandboxTarget(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v := &sandboxChatView{Member: m, User: sandboxUser(m), Lat: defaultLat, Lng: defaultLng, Accuracy: 10, Text: text,
		MaxPhotoMB: maxSandboxPhoto >> 20}
	v.load(s.opt.Sandbox)
	s.prefillSite(r, v)
	s.render(w, r, status, "sandbox_chat", &view{Title: "Sandbox: " + m.Name, Error: fieldops.ErrorMessage(failed),
		Field: fieldops.ErrorField(failed), Data: v})
}

// prefillSite fills the location with the site of the member's next job
// today that is not finished, if there is one with coordinates.
func (s *Server) prefillSite(r *http.Request, v *sandboxChatView) {
	ctx := r.Context()
	loc := orgLocation(r)
	now := s.Now().In(loc)
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	jobs, _, err := s.svc.Jobs.FindJobs(ctx, fieldops.JobFilter{EngineerID: v.Member.UserID, From: day, To: day.AddDate(0, 0, 1), Limit: 50})
	if err != nil {
		return // the default location will do
	}
	for _, j := range jobs {
		if (j.Status == "scheduled" || j.Status == "in_progress") && (j.SiteLatitude != 0 || j.SiteLongitude != 0) {
			v.Lat, v.Lng = j.SiteLatitude, j.SiteLongitude
			v.SiteNote = j.Title + ", " + j.SiteAddress
			return
		}
	}
}

// handleSandboxHistory is the conversation fragment the chat page polls:
// 204 when it has not changed since the version the page shows.
func (s *Server) handleSandboxHistory(w http.ResponseWriter, r *http.Request) {
	m, err := s.sandboxTarget(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v := &sandboxChatView{Member: m, User: sandboxUser(m), Lat: defaultLat, Lng: defaultLng, Accuracy: 10}
	v.load(s.opt.Sandbox)
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Query().Get("v") == v.Version {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s.prefillSite(r, v)
	var buf bytes.Buffer
	if err := s.pages["sandbox_chat"].t.ExecuteTemplate(&buf, "history", v); err != nil {
		s.logger.Error("render", "template", "sandbox_chat/history", "err", err)
		http.Error(w, "Something went wrong on our side; please try again.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	buf.WriteTo(w)
}

// sandboxSent answers a send: back to the chat, or the chat with the
// error.
func (s *Server) sandboxSent(w http.ResponseWriter, r *http.Request, m *fieldops.Member, err error, text string) {
	if err != nil {
		switch fieldops.ErrorCode(err) {
		case fieldops.EINVALID:
			s.renderSandboxChat(w, r, statusOf(err), err, text)
		default:
			s.fail(w, r, err)
		}
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/sandbox/%d", m.UserID), http.StatusSeeOther)
}

func (s *Server) handleSandboxText(w http.ResponseWriter, r *http.Request) {
	m, err := s.sandboxTarget(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	text := r.PostFormValue("text")
	s.sandboxSent(w, r, m, s.opt.Sandbox.SendText(sandboxUser(m), text), text)
}

func (s *Server) handleSandboxLocation(w http.ResponseWriter, r *http.Request) {
	m, err := s.sandboxTarget(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	lat, err1 := strconv.ParseFloat(strings.TrimSpace(r.PostFormValue("lat")), 64)
	lng, err2 := strconv.ParseFloat(strings.TrimSpace(r.PostFormValue("lng")), 64)
	acc := 0.0
	if a := strings.TrimSpace(r.PostFormValue("accuracy")); a != "" {
		acc, err = strconv.ParseFloat(a, 64)
	}
	switch {
	case err1 != nil:
		err = fieldops.Invalid("lat", "Latitude is a number such as 51.5074.")
	case err2 != nil:
		err = fieldops.Invalid("lng", "Longitude is a number such as -0.1278.")
	case err != nil:
		err = fieldops.Invalid("accuracy", "Accuracy is a number of metres, such as 10.")
	default:
		err = s.opt.Sandbox.SendLocation(sandboxUser(m), lat, lng, acc)
	}
	s.sandboxSent(w, r, m, err, "")
}

func (s *Server) handleSandboxPhoto(w http.ResponseWriter, r *http.Request) {
	m, err := s.sandboxTarget(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.sandboxSent(w, r, m, s.sandboxPhoto(w, r, m), "")
}

// sandboxPhoto reads the uploaded photo (at most 20 MB) and sends it.
func (s *Server) sandboxPhoto(w http.ResponseWriter, r *http.Request, m *fieldops.Member) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxSandboxPhoto+1<<20)
	if err := r.ParseMultipartForm(1 << 20); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return fieldops.Invalid("photo", "The photo is larger than %d MB.", maxSandboxPhoto>>20)
		}
		return fieldops.Invalid("photo", "The upload could not be read; choose the photo again.")
	}
	f, _, err := r.FormFile("photo")
	if err != nil {
		return fieldops.Invalid("photo", "Choose a photo to send.")
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSandboxPhoto+1))
	if err != nil {
		return fieldops.Invalid("photo", "The upload could not be read; choose the photo again.")
	}
	if len(data) > maxSandboxPhoto {
		return fieldops.Invalid("photo", "The photo is larger than %d MB.", maxSandboxPhoto>>20)
	}
	if len(data) > 0 && !strings.HasPrefix(http.DetectContentType(data), "image/") {
		return fieldops.Invalid("photo", "That file is not a photo: choose a JPEG or PNG.")
	}
	return s.opt.Sandbox.SendPhoto(sandboxUser(m), data, r.FormValue("caption"))
}

func (s *Server) handleSandboxPress(w http.ResponseWriter, r *http.Request) {
	m, err := s.sandboxTarget(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	msgID, err := strconv.Atoi(r.PostFormValue("message"))
	if err != nil || msgID <= 0 {
		err = fieldops.Invalid("button", "That button is no longer there; reload the page.")
	} else {
		err = s.opt.Sandbox.PressButton(sandboxUser(m), msgID, r.PostFormValue("data"))
	}
	s.sandboxSent(w, r, m, err, "")
}
