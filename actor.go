package fieldops

import (
	"context"
	"net/netip"
	"time"
)

// Channel is where an action came from. It is recorded on every audit entry.
type Channel string

const (
	ChannelWeb      Channel = "web"
	ChannelAPI      Channel = "api"
	ChannelTelegram Channel = "telegram"
	ChannelSystem   Channel = "system" // the scheduler and other timed work
	ChannelCLI      Channel = "cli"    // fieldops subcommands run by an operator
)

// Actor is who is acting: set once per request or bot message by the front
// end after it authenticated the caller, read by the services. The
// services look up the actor's current role and overrides themselves, in
// the same transaction as the change, so a role change or removal takes
// effect on the very next call.
type Actor struct {
	UserID    int64
	OrgID     int64
	Channel   Channel
	IP        netip.Addr // zero when unknown (Telegram, the scheduler)
	SessionID string     // empty for the system and the CLI
	// SessionStart is when the session began; a session that began before
	// its member's "revoke all" is refused even if the session store
	// lost the revocation.
	SessionStart time.Time
}

type actorKey struct{}

// NewContext returns a copy of ctx carrying the actor.
func NewContext(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor in ctx, if any.
func ActorFrom(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(Actor)
	return a, ok
}

// RequireActor returns the signed-in actor of ctx or an EUNAUTHORIZED error.
func RequireActor(ctx context.Context) (Actor, error) {
	a, ok := ActorFrom(ctx)
	if !ok || a.UserID == 0 || a.OrgID == 0 {
		return Actor{}, Errorf(EUNAUTHORIZED, "Please sign in again.")
	}
	return a, nil
}
