package bot_test

import (
	"testing"
	"time"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/bot"
)

func TestRenderAlerts(t *testing.T) {
	job := map[string]any{"title": "EICR", "site": "1 Deansgate"}
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range job {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name, kind string
		payload    map[string]any
		subject    string
		text       string
	}{
		{"OffSite", "alert.location_flagged",
			with(map[string]any{"engineer": "Sam", "event": "check_in", "flags": []any{"off_site", "live"}, "distance_m": 1234.0}),
			"Check-in needs a look", "Sam checked in to EICR — 1 Deansgate: 1.2 km from the site."},
		{"CheckOutSeveral", "alert.location_flagged",
			with(map[string]any{"engineer": "Sam", "event": "check_out", "flags": []any{"forwarded", "stale", "poor_accuracy", "venue"}, "accuracy_m": 250.0}),
			"Check-out needs a look", "Sam checked out of EICR — 1 Deansgate: a forwarded location, an old location, poor accuracy (±250 m), a place picked from a list, not GPS."},
		{"NoFlags", "alert.location_flagged", with(map[string]any{"engineer": "Sam"}),
			"Check-in needs a look", "Sam checked in to EICR — 1 Deansgate: see the job."},
		{"SetAside", "alert.update_set_aside", map[string]any{"update_id": 123456789.0, "user_name": "Sam Lee"},
			"A bot message could not be handled",
			"A Telegram message from Sam Lee (update 123456789) failed several times and was set aside. Nothing from it was applied: ask them to send it again. The server log has the details."},
		{"TelegramLinked", "security.telegram_linked", map[string]any{"account": "sam_eng", "org": "Sparks Ltd", "at": "2026-11-23T15:04:00Z"},
			"Your account was linked to Telegram",
			"Your fieldops account at Sparks Ltd was linked to the Telegram account sam_eng on Mon 23 Nov 2026 15:04. If this was not you, unlink it from your Telegram page in the web panel (or ask your Owner or an Admin to) and tell them."},
		{"TwoFactorEnrolled", "security.two_factor_enrolled", map[string]any{"at": "2026-11-23T15:04:00Z"},
			"Two-factor sign-in set up",
			"Two-factor sign-in was set up for your fieldops account on Mon 23 Nov 2026 15:04. If this was not you, ask your Owner or an Admin to reset it and end your sessions."},
		{"TwoFactorReset", "security.two_factor_reset", map[string]any{"by": "Olive Owner", "at": "2026-11-23T15:04:00Z"},
			"Two-factor sign-in was reset",
			"Olive Owner reset the two-factor sign-in of your fieldops account on Mon 23 Nov 2026 15:04 and ended your sessions. You will set it up again at your next sign-in. If you did not ask for this, tell your Owner."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subject, text := bot.Render(&fieldops.OutboundMessage{Kind: tt.kind, Payload: tt.payload}, time.UTC)
			if subject != tt.subject || text != tt.text {
				t.Fatalf("got %q / %q\nwant %q / %q", subject, text, tt.subject, tt.text)
			}
		})
	}
}
