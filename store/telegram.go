package store

// Telegram links.
//
// A link ties a Telegram account to a member of one organisation, and is
// that member's session of channel telegram: Link starts the session and
// keeps its public id in telegram_links.session_id. The row in
// telegram_links is the durable record. Redis holds the session only so
// that it is listed with the member's other sessions; the bot never
// authenticates with a token but acts as link.Actor(), so a chat keeps
// working when Redis loses its data, and FindSessions lists the link from
// Postgres then.
//
// Ending a link ends its session and the other way round, in one
// transaction: Unlink records the session in sessions_revoked;
// RevokeSession of a telegram session, RevokeUserSessions,
// EndMemberSessions and removing the member deactivate the links. Resolve
// finds only links that are active, whose member is active and whose
// session is not revoked (sessions_revoked, user_sessions_floor), and
// db.load refuses the actor of a revoked link on its own, so an update
// that waited in the inbox while the link was revoked is refused too.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fieldops/fieldops"
)

// TelegramService implements fieldops.TelegramService.
type TelegramService struct {
	db          *DB
	sessions    *SessionService
	botUsername string
}

var _ fieldops.TelegramService = (*TelegramService)(nil)

// NewTelegramService returns the Telegram link service. botUsername is the
// bot's username without the @, for the deep links.
func NewTelegramService(db *DB, sessions *SessionService, botUsername string) *TelegramService {
	return &TelegramService{db: db, sessions: sessions, botUsername: strings.TrimPrefix(botUsername, "@")}
}

// linkTouchEvery is how stale telegram_links.last_seen_at may get.
const linkTouchEvery = time.Minute

// startParam is what Telegram accepts as a /start payload.
var startParam = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// stateKind is what telegram_chats.state_kind accepts.
var stateKind = regexp.MustCompile(`^[a-z][a-z_]{0,49}$`)

// errNotLinked is the answer to an account without an active link.
func errNotLinked() error {
	return fieldops.Errorf(fieldops.EUNAUTHORIZED, "This Telegram account is not linked. In the web panel open your profile, choose Link Telegram and tap the link.")
}

// querier is what unitOrPool returns: a transaction or the pool.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// unitOrPool is the caller's unit of work (WithinTx) when there is one,
// else the pool. It is for methods that run one statement on the bot's
// hot path, which need no savepoint (and its two round trips): their
// inputs are checked first, so the statement fails only when the
// connection does, and then the unit of work fails anyway.
func (db *DB) unitOrPool(ctx context.Context) querier {
	if tx, ok := unitTx(ctx); ok {
		return tx
	}
	return db.pool
}

// CreateLinkToken makes a one-time deep link for the actor's own Telegram
// account: 128 random bits, base64url (22 characters, a valid /start
// payload), of which only the SHA-256 is stored. The actor's earlier
// unused tokens are deleted.
func (s *TelegramService) CreateLinkToken(ctx context.Context) (*fieldops.TelegramLinkToken, error) {
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	token := base64.RawURLEncoding.EncodeToString(b)
	now := s.db.now()
	out := &fieldops.TelegramLinkToken{Token: token, URL: "https://t.me/" + s.botUsername + "?start=" + token,
		ExpiresAt: now.Add(fieldops.LinkTokenTTL)}
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM telegram_link_tokens WHERE org_id = $1 AND user_id = $2 AND used_at IS NULL`,
			acc.OrgID, acc.UserID); err != nil {
			return fmt.Errorf("delete earlier link tokens: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO telegram_link_tokens (token_hash, org_id, user_id, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5)`, hashToken(token), acc.OrgID, acc.UserID, now, out.ExpiresAt); err != nil {
			return fmt.Errorf("insert link token: %w", err)
		}
		return s.db.audit(ctx, tx, acc, entry{action: "telegram.link_token", targetType: "member", targetID: acc.UserID,
			changes: map[string]any{"expires_at": out.ExpiresAt.Format(time.RFC3339)}})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Link consumes a link token for a Telegram account in a private chat.
// The organisation's row is locked first (the order every writer of an
// organisation keeps), then the token's: of two Links with one token,
// exactly one wins and the other finds it used. The session is written to
// Redis inside the transaction and dropped again if the transaction
// fails; it is created here rather than with CreateSession so that all of
// its Postgres work (the membership check) is in this transaction, which
// may be the bot's unit of work, and needs no second connection.
func (s *TelegramService) Link(ctx context.Context, token string, u fieldops.TelegramUser) (*fieldops.TelegramLink, error) {
	if !u.Private {
		return nil, fieldops.Invalid("chat", "Open a private chat with the bot to link your account: linking does not work in a group.")
	}
	if u.ID <= 0 || u.ChatID == 0 {
		return nil, fieldops.Invalid("chat", "Open a private chat with the bot to link your account.")
	}
	if !startParam.MatchString(token) {
		return nil, errLinkUnknown()
	}
	hash := hashToken(token)
	now := s.db.now()
	var (
		link     *fieldops.TelegramLink
		sess     *fieldops.Session
		sessHash []byte
		replaced []endedLink
	)
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		var orgID, userID int64
		var expires time.Time
		var used *time.Time
		// Organisation first, then the token (see the method comment).
		if _, err := tx.Exec(ctx, `SELECT 1 FROM organisations
			WHERE id = (SELECT org_id FROM telegram_link_tokens WHERE token_hash = $1) FOR NO KEY UPDATE`, hash); err != nil {
			return fmt.Errorf("lock organisation: %w", err)
		}
		err := tx.QueryRow(ctx, `SELECT org_id, user_id, expires_at, used_at FROM telegram_link_tokens
			WHERE token_hash = $1 FOR UPDATE`, hash).Scan(&orgID, &userID, &expires, &used)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return errLinkUnknown()
		case err != nil:
			return fmt.Errorf("find link token: %w", err)
		case used != nil:
			return fieldops.Errorf(fieldops.EUNAUTHORIZED, "This link has already been used. Please ask for a new link from your profile in the web panel.")
		case !now.Before(expires):
			return fieldops.Errorf(fieldops.EUNAUTHORIZED, "This link has expired (links work for %s). Please ask for a new link from your profile in the web panel.", words(fieldops.LinkTokenTTL))
		}
		link = &fieldops.TelegramLink{OrgID: orgID, UserID: userID, TelegramUserID: u.ID, ChatID: u.ChatID,
			Username: cleanUsername(u.Username), LinkedAt: now}
		var role string
		err = tx.QueryRow(ctx, `
			UPDATE memberships m SET last_seen_at = $3 FROM users u, organisations o
			WHERE u.id = m.user_id AND o.id = m.org_id AND m.org_id = $1 AND m.user_id = $2 AND m.status = 'active'
			RETURNING u.name, m.role, o.name`, orgID, userID, now).Scan(&link.UserName, &role, &link.OrgName)
		if errors.Is(err, pgx.ErrNoRows) {
			return fieldops.Errorf(fieldops.EUNAUTHORIZED, "You are not a member of this organisation any more. Ask its Owner or an Admin to invite you again.")
		}
		if err != nil {
			return fmt.Errorf("find member: %w", err)
		}
		if link.Role, err = fieldops.ParseRole(role); err != nil {
			return fmt.Errorf("find member: %w", err)
		}
		n := fieldops.NewSession{OrgID: orgID, UserID: userID, Channel: fieldops.ChannelTelegram, Device: linkDevice(u)}
		if err := s.sessions.validateNew(n); err != nil {
			return err
		}
		// The token of a Telegram session is never used: the bot acts as
		// the link's actor.
		sess, _, sessHash = s.sessions.newSession(n, link.UserName, now)
		link.SessionID = sess.ID
		// The member's earlier link, and this account's link to another
		// member, end with their sessions.
		if replaced, err = endLinks(ctx, tx, linkEnd{orgID: orgID, userID: userID, telegramUserID: u.ID},
			now, &userID, "replaced by a new link", s.sessions.TelegramTTL); err != nil {
			return err
		}
		var username *string
		if link.Username != "" {
			username = &link.Username
		}
		if err := tx.QueryRow(ctx, `
			INSERT INTO telegram_links (org_id, user_id, telegram_user_id, chat_id, username, linked_at, last_seen_at, session_id)
			VALUES ($1, $2, $3, $4, $5, $6, $6, $7) RETURNING id`,
			orgID, userID, u.ID, u.ChatID, username, now, sess.ID).Scan(&link.ID); err != nil {
			return fmt.Errorf("insert link: %w", err)
		}
		if err := setActiveOrg(ctx, tx, u.ID, orgID, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE telegram_link_tokens SET used_at = $2, used_by_telegram_user_id = $3 WHERE token_hash = $1`,
			hash, now, u.ID); err != nil {
			return fmt.Errorf("use link token: %w", err)
		}
		acc := &access{name: link.UserName, actor: fieldops.Actor{UserID: userID, OrgID: orgID, Channel: fieldops.ChannelTelegram,
			SessionID: sess.ID, SessionStart: now}}
		acc.OrgID, acc.UserID = orgID, userID
		changes := map[string]any{"telegram_user_id": u.ID, "session_id": sess.ID, "device": sess.Device}
		if len(replaced) > 0 {
			ids := make([]int64, len(replaced))
			for i, r := range replaced {
				ids[i] = r.linkID
			}
			changes["replaced_links"] = ids
		}
		if err := s.db.audit(ctx, tx, acc, entry{action: "telegram.link", targetType: "member", targetID: userID, changes: changes}); err != nil {
			return err
		}
		account := link.Username
		if account == "" {
			account = u.FirstName
		}
		return securityNotice(ctx, tx, orgID, userID, "security.telegram_linked",
			map[string]any{"account": account, "org": link.OrgName, "at": now}, now)
	})
	if err != nil {
		return nil, err
	}
	// Redis follows the commit (of the caller's unit of work, when the bot
	// links inside one): the session list shows the new session and no
	// longer the replaced ones. The link in Postgres is the record: if
	// this fails, the chat works and FindSessions lists it from there.
	s.db.afterCommit(ctx, func() {
		wctx := context.WithoutCancel(ctx)
		if err := s.sessions.write(wctx, sess, sessHash); err != nil {
			s.db.logger.Warn("telegram link: session not written to redis", "session", sess.ID, "err", err)
		}
		s.dropSessions(wctx, replaced)
	})
	return link, nil
}

func errLinkUnknown() error {
	return fieldops.Errorf(fieldops.EUNAUTHORIZED, "This link is not valid. Please ask for a new link from your profile in the web panel.")
}

// linkDevice is the session's device label: "Telegram @username", or the
// first name when there is no username.
func linkDevice(u fieldops.TelegramUser) string {
	if name := cleanUsername(u.Username); name != "" {
		return "Telegram @" + name
	}
	if name := strings.TrimSpace(u.FirstName); name != "" {
		return "Telegram " + name
	}
	return "Telegram"
}

// cleanUsername keeps what telegram_links.username accepts.
func cleanUsername(s string) string {
	s = strings.TrimPrefix(strings.TrimSpace(s), "@")
	s = cleanDevice(s, "")
	if r := []rune(s); len(r) > 64 {
		s = string(r[:64])
	}
	return s
}

// dropSessions deletes the Redis side of ended links' sessions, after the
// commit; Postgres refuses them already, so a failure is only logged.
func (s *TelegramService) dropSessions(ctx context.Context, ended []endedLink) {
	for _, l := range ended {
		if l.sessionID == "" {
			continue
		}
		if err := s.sessions.dropByID(context.WithoutCancel(ctx), l.orgID, l.userID, l.sessionID); err != nil {
			s.db.logger.Warn("telegram link: drop ended session", "session", l.sessionID, "err", err)
		}
	}
}

// setActiveOrg makes orgID the account's current organisation. A pending
// question about another organisation's job is cleared.
func setActiveOrg(ctx context.Context, q querier, telegramUserID, orgID int64, now time.Time) error {
	if u, ok := ctx.Value(unitKey{}).(*unit); ok {
		u.chat = nil // the state may be cleared here
	}
	_, err := q.Exec(ctx, `
		INSERT INTO telegram_chats AS c (telegram_user_id, active_org_id, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (telegram_user_id) DO UPDATE SET active_org_id = EXCLUDED.active_org_id, updated_at = EXCLUDED.updated_at,
			state_kind   = CASE WHEN c.active_org_id IS DISTINCT FROM EXCLUDED.active_org_id THEN NULL ELSE c.state_kind END,
			state_job_id = CASE WHEN c.active_org_id IS DISTINCT FROM EXCLUDED.active_org_id THEN NULL ELSE c.state_job_id END,
			state_data   = CASE WHEN c.active_org_id IS DISTINCT FROM EXCLUDED.active_org_id THEN '{}' ELSE c.state_data END,
			state_at     = CASE WHEN c.active_org_id IS DISTINCT FROM EXCLUDED.active_org_id THEN NULL ELSE c.state_at END`,
		telegramUserID, orgID, now)
	if err != nil {
		return fmt.Errorf("set current organisation: %w", err)
	}
	return nil
}

// Links as the bot sees them: the member and the organisation are joined
// in; liveLink is the condition for a link to act through.
const (
	linkColumns = `l.id, l.org_id, o.name, l.user_id, u.name, m.role, l.telegram_user_id, l.chat_id,
		COALESCE(l.username, ''), COALESCE(l.session_id, ''), l.linked_at, l.blocked_at IS NOT NULL`
	linkFrom = `telegram_links l
		JOIN memberships m ON m.org_id = l.org_id AND m.user_id = l.user_id AND m.status = 'active'
		JOIN organisations o ON o.id = l.org_id
		JOIN users u ON u.id = l.user_id`
	// A link is live when it is active and its session was not revoked,
	// by itself or with all of the member's (belt and braces: revocation
	// deactivates the link in the same transaction).
	liveLink = `l.active
		AND NOT EXISTS (SELECT 1 FROM sessions_revoked r WHERE r.session_id = l.session_id)
		AND NOT EXISTS (SELECT 1 FROM user_sessions_floor f
		                WHERE f.user_id = l.user_id AND f.org_key IN (0, l.org_id) AND f.revoked_before > l.linked_at)`
)

// linkAccess is what db.load would read for the link's actor
// (TelegramLink.Actor): the same member, role, overrides and plan; the
// session checks of load are part of liveLink, which is stricter (the
// link must be active too).
func linkAccess(l *fieldops.TelegramLink, overrides []byte, plan string, extraSeats int) (*access, error) {
	acc := &access{actor: l.Actor(), name: l.UserName, extraSeats: extraSeats}
	acc.OrgID, acc.UserID = l.OrgID, l.UserID
	var err error
	if acc.plan, err = fieldops.FindPlan(plan); err != nil {
		return nil, err
	}
	if acc.Role, acc.Grants, err = memberGrants(l.Role.String(), overrides, acc.plan.Overrides); err != nil {
		return nil, err
	}
	return acc, nil
}

func scanLink(row pgx.Row, extra ...any) (*fieldops.TelegramLink, error) {
	l := &fieldops.TelegramLink{}
	var role string
	dest := append([]any{&l.ID, &l.OrgID, &l.OrgName, &l.UserID, &l.UserName, &role, &l.TelegramUserID, &l.ChatID,
		&l.Username, &l.SessionID, &l.LinkedAt, &l.Blocked}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	l.LinkedAt = l.LinkedAt.UTC()
	var err error
	l.Role, err = fieldops.ParseRole(role)
	return l, err
}

// liveLinks returns the account's live links, sorted by organisation name,
// and the index of the one to the chat's current organisation (-1 for
// none). expired reports whether links were left out only for being past
// the session's life.
func (s *TelegramService) liveLinks(ctx context.Context, q querier, telegramUserID int64) (links []*fieldops.TelegramLink, current int, expired bool, err error) {
	rows, err := q.Query(ctx, `SELECT `+linkColumns+`, COALESCE(c.active_org_id = l.org_id, false),
		       c.state_kind, c.state_job_id, c.state_data, c.state_at, m.overrides, o.plan, o.extra_seats
		FROM `+linkFrom+`
		LEFT JOIN telegram_chats c ON c.telegram_user_id = l.telegram_user_id
		WHERE l.telegram_user_id = $1 AND `+liveLink+`
		ORDER BY o.name, l.org_id`, telegramUserID)
	if err != nil {
		return nil, -1, false, fmt.Errorf("find telegram links: %w", err)
	}
	defer rows.Close()
	oldest := s.db.now().Add(-s.sessions.TelegramTTL)
	current = -1
	var (
		chat     chatRow
		accesses []*access
	)
	for rows.Next() {
		var (
			cur        bool
			overrides  []byte
			plan       string
			extraSeats int
		)
		l, err := scanLink(rows, &cur, &chat.kind, &chat.job, &chat.data, &chat.at, &overrides, &plan, &extraSeats)
		if err != nil {
			return nil, -1, false, fmt.Errorf("find telegram links: %w", err)
		}
		acc, err := linkAccess(l, overrides, plan, extraSeats)
		if err != nil {
			return nil, -1, false, fmt.Errorf("find telegram links: %w", err)
		}
		if !l.LinkedAt.After(oldest) {
			expired = true
			continue
		}
		if cur {
			current = len(links)
		}
		links = append(links, l)
		accesses = append(accesses, acc)
	}
	if err := rows.Err(); err != nil {
		return nil, -1, false, fmt.Errorf("find telegram links: %w", err)
	}
	if u, ok := ctx.Value(unitKey{}).(*unit); ok && (len(links) > 0 || expired) {
		// The chat's state came with the links: the ChatState call that
		// follows in this unit needs no query of its own.
		chat.telegramUserID = telegramUserID
		u.chat = &chat
		// The link that acts is the current one, or the only one: its
		// membership came with it, for the first service call (db.load).
		switch {
		case len(links) == 1:
			u.acc = accesses[0]
		case current >= 0:
			u.acc = accesses[current]
		}
	}
	return links, current, expired && len(links) == 0, nil
}

// Resolve finds the link a Telegram account acts through. It runs in the
// caller's unit of work when there is one.
func (s *TelegramService) Resolve(ctx context.Context, telegramUserID int64) (*fieldops.TelegramLink, []*fieldops.TelegramLink, error) {
	if telegramUserID <= 0 {
		return nil, nil, errNotLinked()
	}
	links, current, expired, err := s.liveLinks(ctx, s.db.unitOrPool(ctx), telegramUserID)
	switch {
	case err != nil:
		return nil, nil, translate(err)
	case expired:
		return nil, nil, fieldops.Errorf(fieldops.EUNAUTHORIZED, "This Telegram chat's link has expired. Link it again from your profile in the web panel.")
	case len(links) == 0:
		return nil, nil, errNotLinked()
	case len(links) == 1:
		return links[0], nil, nil
	case current >= 0:
		return links[current], links, nil
	}
	return nil, links, nil
}

// ChooseOrganisation makes one of the account's linked organisations the
// chat's current one.
func (s *TelegramService) ChooseOrganisation(ctx context.Context, telegramUserID, orgID int64) (*fieldops.TelegramLink, error) {
	if telegramUserID <= 0 {
		return nil, errNotLinked()
	}
	var out *fieldops.TelegramLink
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		links, _, _, err := s.liveLinks(ctx, tx, telegramUserID)
		if err != nil {
			return err
		}
		if len(links) == 0 {
			return errNotLinked()
		}
		i := slices.IndexFunc(links, func(l *fieldops.TelegramLink) bool { return l.OrgID == orgID })
		if i < 0 {
			return notFound("Organisation")
		}
		out = links[i]
		return setActiveOrg(ctx, tx, telegramUserID, orgID, s.db.now())
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Unlink ends a member's Telegram link in the actor's organisation, with
// its session: one's own always, another member's with
// session.revoke_all, and an Owner's only by an Owner.
func (s *TelegramService) Unlink(ctx context.Context, userID int64) error {
	if userID <= 0 {
		return fieldops.Invalid("user_id", "Choose the member whose Telegram account to unlink.")
	}
	var ended []endedLink
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		if err := requireManageSessions(ctx, tx, acc, userID); err != nil {
			return err
		}
		if ended, err = endLinks(ctx, tx, linkEnd{orgID: acc.OrgID, userID: userID}, s.db.now(), &acc.UserID, "unlinked",
			s.sessions.TelegramTTL); err != nil {
			return err
		}
		if len(ended) == 0 {
			return fieldops.Errorf(fieldops.ENOTFOUND, "No Telegram account is linked to this member.")
		}
		return s.db.audit(ctx, tx, acc, entry{action: "telegram.unlink", targetType: "member", targetID: userID,
			changes: map[string]any{"telegram_user_id": ended[0].telegramUserID, "session_id": ended[0].sessionID}})
	})
	if err != nil {
		return err
	}
	for _, l := range ended {
		if l.sessionID == "" {
			continue
		}
		if err := s.sessions.dropByID(ctx, l.orgID, l.userID, l.sessionID); err != nil {
			return s.sessions.revokedButUntidy(err)
		}
	}
	return nil
}

// ChatState returns the account's pending question; one older than
// ChatStateTTL reads as none. It runs in the caller's unit of work when
// there is one.
func (s *TelegramService) ChatState(ctx context.Context, telegramUserID int64) (fieldops.ChatState, error) {
	if u, ok := ctx.Value(unitKey{}).(*unit); ok && u.chat != nil && u.chat.telegramUserID == telegramUserID {
		return s.chatState(*u.chat)
	}
	var chat chatRow
	err := s.db.unitOrPool(ctx).QueryRow(ctx, `SELECT state_kind, state_job_id, state_data, state_at FROM telegram_chats
		WHERE telegram_user_id = $1`, telegramUserID).Scan(&chat.kind, &chat.job, &chat.data, &chat.at)
	if errors.Is(err, pgx.ErrNoRows) {
		return fieldops.ChatState{}, nil
	}
	if err != nil {
		return fieldops.ChatState{}, translate(fmt.Errorf("read chat state: %w", err))
	}
	return s.chatState(chat)
}

// chatRow is a chat's stored state, as read; all NULL when the chat has
// none (or no row).
type chatRow struct {
	telegramUserID int64
	kind           *string
	job            *int64
	data           []byte
	at             *time.Time
}

// chatState turns a stored state into the chat's pending question; one
// older than ChatStateTTL reads as none.
func (s *TelegramService) chatState(c chatRow) (fieldops.ChatState, error) {
	if c.kind == nil || c.at == nil || !s.db.now().Before(c.at.Add(fieldops.ChatStateTTL)) {
		return fieldops.ChatState{}, nil
	}
	st := fieldops.ChatState{Kind: *c.kind, At: c.at.UTC()}
	if c.job != nil {
		st.JobID = *c.job
	}
	if len(c.data) > 0 && string(c.data) != "{}" {
		if err := json.Unmarshal(c.data, &st.Data); err != nil {
			return fieldops.ChatState{}, fieldops.Internal(err, "read chat state")
		}
	}
	return st, nil
}

// SetChatState replaces the account's pending question; a zero Kind
// clears it. At defaults to now. It runs in the caller's unit of work
// when there is one.
func (s *TelegramService) SetChatState(ctx context.Context, telegramUserID int64, st fieldops.ChatState) error {
	if telegramUserID <= 0 {
		return errNotLinked()
	}
	if u, ok := ctx.Value(unitKey{}).(*unit); ok {
		u.chat = nil // read it again after this change
	}
	q := s.db.unitOrPool(ctx)
	if st.Kind == "" {
		if _, err := q.Exec(ctx, `UPDATE telegram_chats SET state_kind = NULL, state_job_id = NULL, state_data = '{}', state_at = NULL
			WHERE telegram_user_id = $1 AND state_kind IS NOT NULL`, telegramUserID); err != nil {
			return translate(fmt.Errorf("clear chat state: %w", err))
		}
		return nil
	}
	if !stateKind.MatchString(st.Kind) {
		return fieldops.Internal(fmt.Errorf("chat state kind %q", st.Kind), "set chat state")
	}
	data := []byte("{}")
	if len(st.Data) > 0 {
		var err error
		if data, err = json.Marshal(st.Data); err != nil {
			return fieldops.Internal(err, "set chat state")
		}
	}
	var job *int64
	if st.JobID != 0 {
		job = &st.JobID
	}
	at := st.At.UTC().Truncate(time.Microsecond)
	if st.At.IsZero() {
		at = s.db.now()
	}
	if _, err := q.Exec(ctx, `
		INSERT INTO telegram_chats (telegram_user_id, updated_at, state_kind, state_job_id, state_data, state_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (telegram_user_id) DO UPDATE SET state_kind = EXCLUDED.state_kind, state_job_id = EXCLUDED.state_job_id,
			state_data = EXCLUDED.state_data, state_at = EXCLUDED.state_at, updated_at = EXCLUDED.updated_at`,
		telegramUserID, s.db.now(), st.Kind, job, string(data), at); err != nil {
		return translate(fmt.Errorf("set chat state: %w", err))
	}
	return nil
}

// TouchLink records that the account was seen (last_seen_at moves at most
// once a minute) and makes a link that was ended only because the user
// had blocked the bot (Outbox.MarkBlocked) active again, provided it is
// still the latest link of its member and of the account, the member is
// active, and its session was not revoked and has not expired. Call it
// before Resolve. One statement, in the caller's unit of work when there
// is one.
func (s *TelegramService) TouchLink(ctx context.Context, telegramUserID int64) error {
	if telegramUserID <= 0 {
		return nil
	}
	now := s.db.now()
	// On the pool, never in the caller's unit of work: the link rows it
	// may lock are released at once rather than held for the whole
	// update, and it cannot deadlock with a writer that locks the
	// organisation first.
	_, err := s.db.pool.Exec(ctx, `
		WITH seen AS (
			UPDATE telegram_links SET last_seen_at = $2
			WHERE telegram_user_id = $1 AND active AND (last_seen_at IS NULL OR last_seen_at <= $3)
		)
		UPDATE telegram_links l SET active = true, blocked_at = NULL, unlinked_at = NULL, last_seen_at = $2
		FROM memberships m
		WHERE l.telegram_user_id = $1 AND NOT l.active AND l.blocked_at IS NOT NULL
		  AND l.unlinked_at = l.blocked_at AND l.unlinked_by IS NULL AND l.linked_at > $4
		  AND m.org_id = l.org_id AND m.user_id = l.user_id AND m.status = 'active'
		  AND NOT EXISTS (SELECT 1 FROM telegram_links x WHERE x.org_id = l.org_id AND x.id <> l.id
		                  AND (x.id > l.id OR x.active) AND (x.user_id = l.user_id OR x.telegram_user_id = l.telegram_user_id))
		  AND NOT EXISTS (SELECT 1 FROM sessions_revoked r WHERE r.session_id = l.session_id)
		  AND NOT EXISTS (SELECT 1 FROM user_sessions_floor f
		                  WHERE f.user_id = l.user_id AND f.org_key IN (0, l.org_id) AND f.revoked_before > l.linked_at)`,
		telegramUserID, now, now.Add(-linkTouchEvery), now.Add(-s.sessions.TelegramTTL))
	if err != nil {
		return translate(fmt.Errorf("touch telegram link: %w", err))
	}
	return nil
}

// linkEnd selects the active links of an organisation to end: those of a
// member, of a Telegram account or of a session (any that is set).
type linkEnd struct {
	orgID          int64
	userID         int64
	telegramUserID int64
	sessionID      string
}

// endedLink is a link endLinks ended.
type endedLink struct {
	linkID, orgID, userID, telegramUserID int64
	sessionID                             string
}

// endLinks deactivates the selected active links and records their
// sessions in sessions_revoked, in one statement of the caller's
// transaction; by is nil for the system. ttl is the life of a Telegram
// session, for the revocation record's expiry.
func endLinks(ctx context.Context, tx pgx.Tx, sel linkEnd, at time.Time, by *int64, reason string, ttl time.Duration) ([]endedLink, error) {
	if sel.userID == 0 && sel.telegramUserID == 0 && sel.sessionID == "" {
		return nil, errors.New("end telegram links: nothing selected")
	}
	rows, err := tx.Query(ctx, `
		WITH ended AS (
			UPDATE telegram_links SET active = false, unlinked_at = $5, unlinked_by = $6
			WHERE org_id = $1 AND (user_id = $2 OR telegram_user_id = $3 OR session_id = $4)
			  -- Active links, and links made inactive only because the user
			  -- blocked the bot (which TouchLink would bring back).
			  AND (active OR (blocked_at IS NOT NULL AND unlinked_by IS NULL AND unlinked_at = blocked_at
			                  AND NOT EXISTS (SELECT 1 FROM sessions_revoked r WHERE r.session_id = telegram_links.session_id)))
			RETURNING id, user_id, telegram_user_id, session_id, linked_at
		), revoked AS (
			INSERT INTO sessions_revoked (session_id, org_id, user_id, channel, revoked_at, revoked_by, reason, expires_at)
			SELECT session_id, $1, user_id, 'telegram', $5, $6, $7, linked_at + $8 * interval '1 microsecond'
			FROM ended WHERE session_id IS NOT NULL
			ON CONFLICT (session_id) DO NOTHING
		)
		SELECT id, user_id, telegram_user_id, COALESCE(session_id, '') FROM ended ORDER BY id`,
		sel.orgID, sel.userID, sel.telegramUserID, sel.sessionID, at, by, reason, ttl.Microseconds())
	if err != nil {
		return nil, fmt.Errorf("end telegram links: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (endedLink, error) {
		l := endedLink{orgID: sel.orgID}
		err := r.Scan(&l.linkID, &l.userID, &l.telegramUserID, &l.sessionID)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("end telegram links: %w", err)
	}
	return out, nil
}

// liveLinkSessions returns live Telegram links of the organisation as
// sessions: all (userID 0) or one member's, or the one of a session id.
// Links from before links had sessions (no session_id) are left out.
func liveLinkSessions(ctx context.Context, tx pgx.Tx, orgID, userID int64, sessionID string, now time.Time, ttl time.Duration) ([]*fieldops.Session, error) {
	rows, err := tx.Query(ctx, `SELECT `+linkColumns+`, l.last_seen_at
		FROM `+linkFrom+`
		WHERE l.org_id = $1 AND ($2 = 0 OR l.user_id = $2) AND ($3 = '' OR l.session_id = $3)
		  AND l.session_id IS NOT NULL AND l.linked_at > $4 AND `+liveLink+`
		ORDER BY l.id`, orgID, userID, sessionID, now.Add(-ttl))
	if err != nil {
		return nil, fmt.Errorf("find telegram links: %w", err)
	}
	defer rows.Close()
	var out []*fieldops.Session
	for rows.Next() {
		var seen *time.Time
		l, err := scanLink(rows, &seen)
		if err != nil {
			return nil, fmt.Errorf("find telegram links: %w", err)
		}
		sess := &fieldops.Session{ID: l.SessionID, OrgID: l.OrgID, UserID: l.UserID, UserName: l.UserName,
			Channel: fieldops.ChannelTelegram, Device: "Telegram", CreatedAt: l.LinkedAt, LastSeenAt: l.LinkedAt,
			ExpiresAt: l.LinkedAt.Add(ttl)}
		if l.Username != "" {
			sess.Device = "Telegram @" + l.Username
		}
		if seen != nil && seen.After(sess.LastSeenAt) {
			sess.LastSeenAt = seen.UTC()
		}
		out = append(out, sess)
	}
	return out, rows.Err()
}

// addTelegramLinks completes a FindSessions list from telegram_links, the
// record of Telegram sessions: a live link whose session Redis lost is
// added, and a listed one takes the link's last_seen_at (the bot moves
// that, not Redis).
func (s *SessionService) addTelegramLinks(ctx context.Context, tx pgx.Tx, orgID, userID int64, now time.Time, list []*fieldops.Session) ([]*fieldops.Session, error) {
	links, err := liveLinkSessions(ctx, tx, orgID, userID, "", now, s.TelegramTTL)
	if err != nil {
		return nil, err
	}
	have := make(map[string]*fieldops.Session, len(list))
	for _, sess := range list {
		have[sess.ID] = sess
	}
	for _, l := range links {
		sess, ok := have[l.ID]
		if !ok {
			list = append(list, l)
			continue
		}
		if l.LastSeenAt.After(sess.LastSeenAt) {
			sess.LastSeenAt = l.LastSeenAt
		}
	}
	return list, nil
}
