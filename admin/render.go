package admin

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fieldops/fieldops"
)

// pageTemplate is one page: the layout plus the page's own file.
type pageTemplate struct{ t *template.Template }

var funcs = template.FuncMap{
	"datetime": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.In(london).Format("Mon 2 Jan 2006 15:04")
	},
	"date": func(t time.Time) string { return t.In(london).Format("2 Jan 2006") },
	"pounds": func(pence int) string {
		return fmt.Sprintf("£%d.%02d", pence/100, pence%100)
	},
	"roles": fieldops.AllRoles,
	"flags": fieldops.AllFlags,
	"scopes": func() []fieldops.Scope {
		return []fieldops.Scope{fieldops.ScopeAll, fieldops.ScopeOwn, fieldops.ScopeNone}
	},
	"join": strings.Join,
	"list": func(v ...any) []any { return v },
}

var london = func() *time.Location {
	l, err := time.LoadLocation("Europe/London")
	if err != nil {
		return time.UTC
	}
	return l
}()

// parsePages parses every page template with the layout.
func parsePages() (map[string]*pageTemplate, error) {
	files, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*pageTemplate{}
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(f, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", f)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", name, err)
		}
		pages[name] = &pageTemplate{t: t}
	}
	return pages, nil
}

// view is what every page gets.
type view struct {
	Title  string
	Me     *fieldops.Member
	Org    *fieldops.Organisation
	grants fieldops.Grants
	Flash  string
	Error  string
	Field  string
	Data   any
}

// Can reports whether the signed-in member holds the flag with any scope,
// to hide what they cannot do. The services decide; this only hides.
func (v *view) Can(flag string) bool {
	if v.Me == nil {
		return false
	}
	f, err := fieldops.ParseFlag(flag)
	return err == nil && v.grants.Scope(f) != fieldops.ScopeNone
}

// render writes a page with status.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, v *view) {
	p, ok := s.pages[name]
	if !ok {
		s.logger.Error("no such template", "name", name)
		http.Error(w, "Something went wrong on our side; please try again.", http.StatusInternalServerError)
		return
	}
	if m, ok := memberFrom(r.Context()); ok && v.Me == nil {
		v.Me, v.Org, v.grants = m.member, m.org, m.grants
	}
	if v.Flash == "" {
		v.Flash = s.takeFlash(w, r)
	}
	buf, _ := s.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	defer s.putBuffer(buf)
	if err := p.t.Execute(buf, v); err != nil {
		s.logger.Error("render", "template", name, "err", err)
		http.Error(w, "Something went wrong on our side; please try again.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	buf.WriteTo(w)
}

// putBuffer returns a page buffer to the pool: pages are rendered into a
// buffer (so that a template error can still become a 500), and a busy
// page such as the dispatch board is a megabyte that would otherwise be
// regrown by doubling on every request. Buffers over 4 MiB are dropped.
func (s *Server) putBuffer(buf *bytes.Buffer) {
	if buf.Cap() > 4<<20 {
		return
	}
	buf.Reset()
	s.bufs.Put(buf)
}

// statusOf maps a domain error code to its HTTP status, once for the
// whole panel.
func statusOf(err error) int {
	switch fieldops.ErrorCode(err) {
	case fieldops.EINVALID:
		return http.StatusUnprocessableEntity
	case fieldops.ENOTFOUND:
		return http.StatusNotFound
	case fieldops.EFORBIDDEN:
		return http.StatusForbidden
	case fieldops.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case fieldops.ECONFLICT:
		return http.StatusConflict
	case fieldops.ELIMIT:
		return http.StatusTooManyRequests
	case fieldops.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// fail answers a request that a service refused: signed-out callers go
// to the sign-in page, others get a page that says what to do.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := fieldops.ErrorCode(err)
	if code == fieldops.EINTERNAL {
		s.logger.Error("request failed", "path", r.URL.Path, "err", err)
	}
	if code == fieldops.EUNAUTHORIZED {
		s.clearSession(w)
		s.setFlash(w, fieldops.ErrorMessage(err))
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return
	}
	title := map[string]string{
		fieldops.ENOTFOUND: "Not found", fieldops.EFORBIDDEN: "Not allowed", fieldops.EUNAVAILABLE: "Temporarily unavailable",
		fieldops.EINVALID: "Please check the details", fieldops.ECONFLICT: "That can't be done yet", fieldops.ELIMIT: "Limit reached",
	}[code]
	if title == "" {
		title = "Something went wrong"
	}
	s.render(w, r, statusOf(err), "error", &view{Title: title, Error: fieldops.ErrorMessage(err)})
}

// back redirects to a page with a message for the next render.
func (s *Server) back(w http.ResponseWriter, r *http.Request, to, flash string) {
	if flash != "" {
		s.setFlash(w, flash)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

const flashCookie = "fieldops_flash"

func (s *Server) setFlash(w http.ResponseWriter, msg string) {
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: url.QueryEscape(msg), Path: "/", HttpOnly: true,
		Secure: s.opt.SecureCookies, SameSite: http.SameSiteLaxMode, MaxAge: 60})
}

func (s *Server) takeFlash(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return ""
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.opt.SecureCookies})
	msg, err := url.QueryUnescape(c.Value)
	if err != nil {
		return ""
	}
	return msg
}

// errInvalidForm is returned for form input that cannot even be parsed.
var errInvalidForm = errors.New("invalid form")
