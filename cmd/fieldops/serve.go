package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/admin"
	"github.com/fieldops/fieldops/bot"
	"github.com/fieldops/fieldops/bot/telegramtest"
	"github.com/fieldops/fieldops/scheduler"
	"github.com/fieldops/fieldops/store"
)

// webhookPath is where Telegram posts updates in webhook mode.
const webhookPath = "/telegram/webhook"

// leaderLockKey is the Postgres advisory lock the bot's leader holds.
const leaderLockKey int64 = 0x6669656c646f7073 // "fieldops"

// runServe runs the web server until ctx ends (SIGINT or SIGTERM), then
// shuts down gracefully within http.shutdown_timeout.
func (m *Main) runServe(ctx context.Context, args []string) error {
	cfg, err := m.config("serve", args, nil)
	if err != nil {
		return err
	}
	logger := cfg.Log.Logger(m.Stderr)

	totpKey, err := cfg.Security.TOTPKeyBytes()
	if err != nil {
		return err
	}

	// Neither store is dialled here: serve starts while Postgres or Redis
	// is down, /readyz says which, and requests recover when it is back.
	pool, err := store.OpenPool(ctx, cfg.Database.URL, int32(cfg.Database.MaxConns))
	if err != nil {
		return err
	}
	defer pool.Close()
	db := store.NewDB(pool, logger)
	rdb, err := store.OpenRedis(cfg.Redis.URL)
	if err != nil {
		return err
	}
	defer rdb.Close()

	sessions := store.NewSessionService(db, rdb)
	auth, err := store.NewAuthService(db, rdb, sessions, totpKey)
	if err != nil {
		return err
	}
	members := store.NewMemberService(db)
	members.Sessions = sessions
	svc := admin.Services{
		Sessions:    sessions,
		Auth:        auth,
		Orgs:        store.NewOrganisationService(db),
		Members:     members,
		Jobs:        store.NewJobService(db),
		Customers:   store.NewCustomerService(db),
		Capacity:    store.NewCapacityService(db),
		Sites:       store.NewSiteService(db),
		Audit:       store.NewAuditService(db),
		Invitations: store.NewInvitationService(db, sessions),
		Tokens:      store.NewAPITokenService(db, sessions),

		Certificates: store.NewCertificateService(db),
		Defects:      store.NewDefectService(db),
		Evidence:     store.NewJobEvidenceService(db),
	}
	if cfg.SMTP.Enabled() {
		mailer, err := store.NewSMTPMailer(store.SMTPSettings{Host: cfg.SMTP.Host, Port: cfg.SMTP.Port, Username: cfg.SMTP.Username,
			Password: cfg.SMTP.Password, From: cfg.SMTP.From, TLS: cfg.SMTP.TLS})
		if err != nil {
			return err
		}
		svc.Mailer = mailer
	}
	// The bot talks to Telegram when a token is configured; without one,
	// to a local Bot API server started here, and the admin panel's
	// Sandbox page chats with it as the team's engineers.
	tgToken, tgURL, botUsername := cfg.Telegram.Token, cfg.Telegram.APIURL, cfg.Telegram.BotUsername
	var sandbox fieldops.Sandbox
	if !cfg.Telegram.Enabled() {
		tgs, err := telegramtest.Start(telegramtest.WithBotName("fieldops_sandbox_bot", "fieldops"))
		if err != nil {
			return fmt.Errorf("sandbox Bot API server: %w", err)
		}
		defer tgs.Close()
		tgToken, tgURL, botUsername = tgs.Token(), tgs.URL(), tgs.Me().Username
		sandbox = tgs.Sandbox()
		logger.Info("no telegram.token: the bot talks to the in-process sandbox; open Sandbox in the admin panel", "bot_api", tgURL)
	}
	telegram := store.NewTelegramService(db, sessions, botUsername)
	svc.Telegram = telegram
	srv, err := admin.NewServer(logger, svc, admin.Options{SecureCookies: cfg.HTTP.SecureCookies, BaseURL: cfg.HTTP.BaseURL,
		TrustedProxies: cfg.HTTP.TrustedPrefixes(), Sandbox: sandbox},
		admin.Check{Name: "postgres", Ping: db.Ping},
		admin.Check{Name: "redis", Ping: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }},
	)
	if err != nil {
		return err
	}
	b, err := bot.New(bot.Services{
		Telegram: telegram, Inbox: store.NewInbox(db), Outbox: store.NewOutbox(db),
		Orgs: svc.Orgs, Members: svc.Members, Jobs: svc.Jobs,
		Field:    store.NewFieldWorkService(db, &store.PhotoFiles{Dir: cfg.Storage.PhotosDir}),
		Evidence: svc.Evidence, Defects: svc.Defects, Certificates: svc.Certificates, Capacity: svc.Capacity,
		Mailer: svc.Mailer,
	}, bot.Options{
		Token: tgToken, ServerURL: tgURL, BotUsername: botUsername,
		Mode: cfg.Telegram.Mode, WebhookURL: strings.TrimSuffix(cfg.HTTP.BaseURL, "/") + webhookPath, WebhookSecret: cfg.Telegram.WebhookSecret,
		// Each worker holds a connection for the whole of an update: half
		// the pool, at most 8, leaves the rest to the panel and the
		// scheduler.
		Workers: max(1, min(8, cfg.Database.MaxConns/2)),
		Logger:  logger.With("component", "bot"),
	})
	if err != nil {
		return fmt.Errorf("telegram: %w", err)
	}
	// Of several instances one leads (a Postgres advisory lock): it polls
	// Telegram, handles the inbox and sends the outbox; the others stand
	// by. Every instance answers the webhook, which only stores updates.
	lead, err := store.NewLeadership(cfg.Database.URL, leaderLockKey, logger.With("component", "leadership"))
	if err != nil {
		return err
	}
	bctx, stopBot := context.WithCancel(ctx)
	botDone := make(chan struct{})
	go func() {
		defer close(botDone)
		_ = b.Lead(bctx, lead)
	}()
	defer func() { stopBot(); <-botDone }()
	mux := http.NewServeMux()
	mux.Handle("POST "+webhookPath, b.WebhookHandler())
	mux.Handle("/", srv.Handler())
	// The scheduled work runs in every instance; each slot is claimed in
	// Postgres, so it runs once. Stopped (and drained) after the server.
	sched := scheduler.New(store.NewScheduledWork(db), logger.With("component", "scheduler"))
	if err := sched.Start(ctx); err != nil {
		return err
	}
	defer sched.Stop()
	return m.serveHTTP(ctx, cfg, logger, mux)
}

func (m *Main) serveHTTP(ctx context.Context, cfg Config, logger *slog.Logger, h http.Handler) error {
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listen on http.addr %s: %w", cfg.HTTP.Addr, err)
	}
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	logger.Info("serving", "addr", ln.Addr().String(), "version", version)
	if m.Listening != nil {
		m.Listening(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "timeout", cfg.HTTP.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.HTTP.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http: %w", err)
	}
	logger.Info("stopped")
	return nil
}
