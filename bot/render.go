package bot

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fieldops/fieldops"
)

// maxNotificationText keeps notifications short: long messages reach
// Telegram's flood limits sooner.
const maxNotificationText = 500

// Render returns the subject (for e-mail) and the plain text of a queued
// notification, with times shown in loc. Unknown kinds get a generic
// text. The text is never longer than about 500 characters.
func Render(m *fieldops.OutboundMessage, loc *time.Location) (subject, text string) {
	if loc == nil {
		loc = time.UTC
	}
	p := payload(m.Payload)
	job := func() string {
		var b strings.Builder
		b.WriteString(p.str("title", "Job"))
		if site := p.str("site", ""); site != "" {
			b.WriteString(" — " + site)
		}
		if w := p.window("scheduled_start", "scheduled_end", loc); w != "" {
			b.WriteString(", " + w)
		}
		return b.String()
	}
	switch m.Kind {
	case "job.assigned":
		subject, text = "New job", "New job: "+job()+"."
		if p, _ := m.Payload["primary"].(bool); p {
			text += " You are the primary engineer."
		}
	case "job.unassigned":
		subject, text = "Job removed", "You are no longer on this job: "+job()+"."
	case "job.rescheduled":
		subject, text = "Job rescheduled", "Job rescheduled: "+job()+"."
	case "job.changed":
		subject, text = "Job changed", "Job updated: "+job()+". Open it for the details."
	case "job.cancelled":
		subject, text = "Job cancelled", "Job cancelled: "+job()+"."
		if d, _ := m.Payload["deleted"].(bool); d {
			text = "Job deleted: " + job() + "."
		}
		if ch, ok := m.Payload["changes"].(map[string]any); ok {
			if d, _ := ch["deleted"].(bool); d {
				text = "Job deleted: " + job() + "."
			}
		}
	case "job.primary_changed":
		subject, text = "Primary engineer changed", "The primary engineer changed on: "+job()+"."
		if p, _ := m.Payload["primary"].(bool); p {
			text += " You are now the primary engineer."
		}
	case "job.reminder":
		subject, text = "Job reminder", "Reminder: "+job()+"."
	case "agenda.morning":
		subject = "Your jobs today"
		var b strings.Builder
		b.WriteString("Your jobs today")
		if d := p.str("date", ""); d != "" {
			b.WriteString(" (" + d + ")")
		}
		b.WriteString(":")
		jobs, _ := m.Payload["jobs"].([]any)
		if len(jobs) == 0 {
			b.WriteString(" none.")
		}
		for _, j := range jobs {
			jm, _ := j.(map[string]any)
			jp := payload(jm)
			line := "\n• " + jp.window("scheduled_start", "scheduled_end", loc) + " " + jp.str("title", "Job")
			if s := jp.str("site", ""); s != "" {
				line += " — " + s
			}
			b.WriteString(line)
		}
		text = b.String()
	case "alert.no_show":
		subject, text = "No-show", "No one has checked in to: "+job()+"."
	case "alert.forgotten_check_out":
		subject = "Check-out missing"
		who := p.str("engineer", "An engineer")
		if own, _ := m.Payload["own"].(bool); own {
			who = "You"
		}
		text = fmt.Sprintf("%s checked in to %s at %s and did not check out.", who, p.str("title", "a job"), p.clock("check_in_at", loc))
	case "defect.c1":
		subject = "C1 defect: danger present"
		text = fmt.Sprintf("C1 defect (danger present) on %s: %s", job(), p.str("description", "see the job"))
	case "defect.remedial_due", "defect.remedial_overdue":
		subject = "Remedial work due"
		if m.Kind == "defect.remedial_overdue" {
			subject = "Remedial work overdue"
		}
		text = fmt.Sprintf("%s: %s defect at %s — %s (due %s).", subject, p.str("code", ""), p.str("site", "a site"),
			p.str("description", ""), p.str("remedial_due", "?"))
	case "site.inspection_due":
		subject = "Inspection due"
		text = fmt.Sprintf("Inspection due at %s on %s.", p.str("site", "a site"), p.str("next_inspection_due", "?"))
	case "certificate.submitted":
		subject, text = "Certificate to approve", "A certificate is waiting for approval: "+job()+"."
	case "certificate.approved":
		subject, text = "Certificate approved", "A certificate was approved and can be issued: "+job()+"."
	case "invitation.expired":
		subject = "Invitation expired"
		text = fmt.Sprintf("Your invitation to %s expired. Send a new one from the team page.", p.str("email", "a new member"))
	case "digest.owner":
		subject, text = "Daily digest", "Your daily digest is ready in the admin panel."
	case "alert.location_flagged":
		subject = "Check-in needs a look"
		event := "checked in to"
		if p.str("event", "") == "check_out" {
			subject, event = "Check-out needs a look", "checked out of"
		}
		text = fmt.Sprintf("%s %s %s: %s.", p.str("engineer", "An engineer"), event, job(), locationFlags(m.Payload))
	case "alert.update_set_aside":
		subject = "A bot message could not be handled"
		text = fmt.Sprintf("A Telegram message from %s (update %s) failed several times and was set aside. Nothing from it was applied: ask them to send it again. The server log has the details.",
			p.str("user_name", "a team member"), p.str("update_id", "?"))
	case "security.telegram_linked":
		subject = "Your account was linked to Telegram"
		text = fmt.Sprintf("Your fieldops account at %s was linked to the Telegram account %s on %s. If this was not you, unlink it from your Telegram page in the web panel (or ask your Owner or an Admin to) and tell them.",
			p.str("org", "your organisation"), p.str("account", "(no name)"), p.stamp("at", loc))
	case "security.two_factor_enrolled":
		subject = "Two-factor sign-in set up"
		text = fmt.Sprintf("Two-factor sign-in was set up for your fieldops account on %s. If this was not you, ask your Owner or an Admin to reset it and end your sessions.",
			p.stamp("at", loc))
	case "security.two_factor_reset":
		subject = "Two-factor sign-in was reset"
		text = fmt.Sprintf("%s reset the two-factor sign-in of your fieldops account on %s and ended your sessions. You will set it up again at your next sign-in. If you did not ask for this, tell your Owner.",
			p.str("by", "An administrator"), p.stamp("at", loc))
	case "alert.audit_chain_broken":
		subject, text = "Audit log check failed", "The audit log check found a problem. Look at the audit page in the admin panel."
	default:
		subject = "Notification"
		text = "fieldops: " + strings.ReplaceAll(m.Kind, "_", " ")
		if t := p.str("title", ""); t != "" {
			text += " — " + job()
		}
		text += ". Open fieldops for the details."
	}
	return subject, truncate(text, maxNotificationText)
}

// locationFlags says in words why location evidence needs a look.
func locationFlags(p map[string]any) string {
	flags, _ := p["flags"].([]any)
	var out []string
	for _, f := range flags {
		switch f {
		case fieldops.LocationOffSite:
			if d, ok := p["distance_m"].(float64); ok {
				out = append(out, fmt.Sprintf("%s from the site", metres(d)))
			} else {
				out = append(out, "away from the site")
			}
		case fieldops.LocationForwarded:
			out = append(out, "a forwarded location")
		case fieldops.LocationStale:
			out = append(out, "an old location")
		case fieldops.LocationPoorAccuracy:
			if a, ok := p["accuracy_m"].(float64); ok {
				out = append(out, fmt.Sprintf("poor accuracy (±%s)", metres(a)))
			} else {
				out = append(out, "poor accuracy")
			}
		case fieldops.LocationVenue:
			out = append(out, "a place picked from a list, not GPS")
		}
	}
	if len(out) == 0 {
		return "see the job"
	}
	return strings.Join(out, ", ")
}

// metres writes a distance for people: 35 m, 1.2 km.
func metres(d float64) string {
	if d >= 1000 {
		return fmt.Sprintf("%.1f km", d/1000)
	}
	return fmt.Sprintf("%.0f m", d)
}

type payload map[string]any

func (p payload) str(k, def string) string {
	switch v := p[k].(type) {
	case string:
		if v != "" {
			return v
		}
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case nil:
	default:
		return fmt.Sprint(v)
	}
	return def
}

func (p payload) time(k string) (time.Time, bool) {
	switch v := p[k].(type) {
	case time.Time:
		return v, true
	case string:
		t, err := time.Parse(time.RFC3339Nano, v)
		return t, err == nil
	}
	return time.Time{}, false
}

// stamp is the time at k as a date and time: "Mon 23 Nov 2026 15:04".
func (p payload) stamp(k string, loc *time.Location) string {
	t, ok := p.time(k)
	if !ok {
		return "?"
	}
	return t.In(loc).Format("Mon 2 Jan 2006 15:04")
}

func (p payload) clock(k string, loc *time.Location) string {
	t, ok := p.time(k)
	if !ok {
		return "?"
	}
	return t.In(loc).Format("Mon 15:04")
}

// window formats a start and end as "Mon 2 Dec 09:00–12:00".
func (p payload) window(startKey, endKey string, loc *time.Location) string {
	s, ok := p.time(startKey)
	if !ok {
		return ""
	}
	s = s.In(loc)
	out := s.Format("Mon 2 Jan 15:04")
	if e, ok := p.time(endKey); ok {
		e = e.In(loc)
		if e.YearDay() == s.YearDay() && e.Year() == s.Year() {
			out += "–" + e.Format("15:04")
		} else {
			out += " – " + e.Format("Mon 2 Jan 15:04")
		}
	}
	return out
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
