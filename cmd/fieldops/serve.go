package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	tgbot "github.com/go-telegram/bot"

	"github.com/fieldops/fieldops/admin"
	"github.com/fieldops/fieldops/bot"
	"github.com/fieldops/fieldops/scheduler"
	"github.com/fieldops/fieldops/store"
)

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
	srv, err := admin.NewServer(logger, svc, admin.Options{SecureCookies: cfg.HTTP.SecureCookies, BaseURL: cfg.HTTP.BaseURL,
		TrustedProxies: cfg.HTTP.TrustedPrefixes()},
		admin.Check{Name: "postgres", Ping: db.Ping},
		admin.Check{Name: "redis", Ping: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }},
	)
	if err != nil {
		return err
	}
	// Notifications in the outbox go out by Telegram (e-mail for members
	// without a link) when a bot token is configured. Claims are row locks
	// with a timeout, so several instances never send one message twice;
	// Telegram's rate limits are kept per instance until only the polling
	// leader dispatches.
	if cfg.Telegram.Enabled() {
		tg, err := tgbot.New(cfg.Telegram.Token, tgbot.WithServerURL(cfg.Telegram.ServerURL), tgbot.WithSkipGetMe())
		if err != nil {
			return fmt.Errorf("telegram: %w", err)
		}
		disp := bot.NewDispatcher(store.NewOutbox(db), tg, svc.Mailer, logger.With("component", "dispatcher"))
		dctx, stopDispatch := context.WithCancel(ctx)
		dispatched := make(chan struct{})
		go func() {
			defer close(dispatched)
			disp.Run(dctx)
		}()
		defer func() { stopDispatch(); <-dispatched }()
	}
	// The scheduled work runs in every instance; each slot is claimed in
	// Postgres, so it runs once. Stopped (and drained) after the server.
	sched := scheduler.New(store.NewScheduledWork(db), logger.With("component", "scheduler"))
	if err := sched.Start(ctx); err != nil {
		return err
	}
	defer sched.Stop()
	return m.serveHTTP(ctx, cfg, logger, srv.Handler())
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
