package admin

import (
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/fieldops/fieldops"
)

// auditView is the audit log page.
type auditView struct {
	Events  []*fieldops.AuditEvent
	Members []*fieldops.Member
	Filter  auditForm
	Next    string // query string of the next page
	Export  string // query string for the CSV
}

// auditForm is the filter as typed.
type auditForm struct {
	Member string
	Action string
	From   string
	To     string
}

// auditFilter reads the filter from the query string; dates are whole
// days in UK time, To inclusive.
func auditFilter(q url.Values) (fieldops.AuditFilter, auditForm, error) {
	form := auditForm{Member: q.Get("member"), Action: q.Get("action"), From: q.Get("from"), To: q.Get("to")}
	f := fieldops.AuditFilter{Action: form.Action, After: q.Get("after")}
	if form.Member != "" {
		id, err := strconv.ParseInt(form.Member, 10, 64)
		if err != nil {
			return f, form, fieldops.Invalid("member", "Choose a member from the list.")
		}
		f.ActorUserID = id
	}
	for _, d := range []struct {
		in   string
		out  *time.Time
		next bool
		name string
	}{{form.From, &f.From, false, "from"}, {form.To, &f.To, true, "to"}} {
		if d.in == "" {
			continue
		}
		t, err := time.ParseInLocation("2006-01-02", d.in, london)
		if err != nil {
			return f, form, fieldops.Invalid(d.name, "Dates look like 2026-11-23.")
		}
		if d.next {
			t = t.AddDate(0, 0, 1)
		}
		*d.out = t
	}
	return f, form, f.Validate()
}

func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f, form, err := auditFilter(r.URL.Query())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	events, next, err := s.svc.Audit.FindAuditEvents(ctx, f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v := auditView{Events: events, Filter: form}
	if members, err := s.svc.Members.FindMembers(ctx, fieldops.MemberFilter{IncludeRemoved: true}); err == nil {
		v.Members = members
	}
	q := url.Values{}
	for k, val := range map[string]string{"member": form.Member, "action": form.Action, "from": form.From, "to": form.To} {
		if val != "" {
			q.Set(k, val)
		}
	}
	v.Export = q.Encode()
	if next != "" {
		q.Set("after", next)
		v.Next = q.Encode()
	}
	s.render(w, r, http.StatusOK, "audit", &view{Title: "Audit log", Data: v})
}

// handleAuditCSV streams the filtered log as CSV (audit.export).
func (s *Server) handleAuditCSV(w http.ResponseWriter, r *http.Request) {
	f, _, err := auditFilter(r.URL.Query())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var cw *csv.Writer
	err = s.svc.Audit.ExportAuditEvents(r.Context(), f, func(ev *fieldops.AuditEvent) error {
		if cw == nil {
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set("Content-Disposition", `attachment; filename="audit-log.csv"`)
			cw = csv.NewWriter(w)
			cw.Write([]string{"seq", "time_utc", "actor_user_id", "actor", "channel", "ip", "action", "target_type", "target_id", "changes", "hash"})
		}
		changes, _ := json.Marshal(ev.Changes)
		return cw.Write([]string{strconv.FormatInt(ev.Seq, 10), ev.At.UTC().Format(time.RFC3339), strconv.FormatInt(ev.ActorUserID, 10),
			csvSafe(ev.ActorLabel), string(ev.Channel), ev.IP, ev.Action, ev.TargetType, ev.TargetID, csvSafe(string(changes)), hex.EncodeToString(ev.Hash)})
	})
	if err != nil {
		if cw == nil {
			s.fail(w, r, err)
			return
		}
		s.logger.Error("audit export cut short", "err", err)
	}
	if cw == nil { // nothing matched: still a valid file
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="audit-log.csv"`)
		cw = csv.NewWriter(w)
		cw.Write([]string{"seq", "time_utc", "actor_user_id", "actor", "channel", "ip", "action", "target_type", "target_id", "changes", "hash"})
	}
	cw.Flush()
}

// csvSafe keeps a spreadsheet from running a cell as a formula.
func csvSafe(s string) string {
	if s != "" && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' || s[0] == '\t' || s[0] == '\r') {
		return "'" + s
	}
	return s
}
