package admin

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fieldops/fieldops"
)

// jobWork is the job page's certificates and defects, and the time on
// site, photos and notes recorded in the field. A list the member cannot
// see (no certificate.view, no defect.view, no photo.view) is left out.
type jobWork struct {
	Evidence     *fieldops.JobEvidence // nil without the evidence service
	Certificates []*fieldops.Certificate
	Defects      []*fieldops.Defect
	CanCerts     bool
	CanDefects   bool
	CertTypes    []string
	DefectCodes  []string
	Today        time.Time // the organisation's day, for overdue remedials
}

// Overdue reports whether a defect's remedial is past due.
func (w *jobWork) Overdue(d *fieldops.Defect) bool { return d.Overdue(w.Today) }

// Hours is a number of minutes in hours and minutes.
func (w *jobWork) Hours(m int) string { return hoursMinutes(m) }

// Metres is a distance or an accuracy: "640 m".
func (w *jobWork) Metres(m *float64) string {
	if m == nil {
		return ""
	}
	return fmt.Sprintf("%.0f m", *m)
}

// Size is a photo's size: "240 KB".
func (w *jobWork) Size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

var locationFlags = map[string]string{
	fieldops.LocationOffSite:      "off site",
	fieldops.LocationForwarded:    "forwarded location",
	fieldops.LocationStale:        "old location",
	fieldops.LocationPoorAccuracy: "poor accuracy",
	fieldops.LocationVenue:        "a venue, not a GPS fix",
	fieldops.LocationLive:         "live location",
}

// FlagLabel says a location flag in words.
func (w *jobWork) FlagLabel(f string) string {
	if l, ok := locationFlags[f]; ok {
		return l
	}
	return f
}

// jobWork loads the field records, certificates and defects of a job for
// its page.
func (s *Server) jobWork(ctx context.Context, j *fieldops.Job) (*jobWork, error) {
	w := &jobWork{CertTypes: fieldops.CertificateTypes, DefectCodes: fieldops.DefectCodes}
	now := s.Now().In(orgClock(ctx).loc)
	w.Today = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	if s.svc.Evidence != nil {
		ev, err := s.svc.Evidence.FindJobEvidence(ctx, j.ID)
		switch fieldops.ErrorCode(err) {
		case "":
			w.Evidence = ev
		case fieldops.EFORBIDDEN:
		default:
			return nil, err
		}
	}
	if s.svc.Certificates != nil {
		certs, err := s.svc.Certificates.FindCertificates(ctx, fieldops.CertificateFilter{JobID: j.ID, Limit: 500})
		switch fieldops.ErrorCode(err) {
		case "":
			w.Certificates, w.CanCerts = certs, true
		case fieldops.EFORBIDDEN:
		default:
			return nil, err
		}
	}
	if s.svc.Defects != nil {
		defects, err := s.svc.Defects.FindDefects(ctx, fieldops.DefectFilter{JobID: j.ID, Limit: 500})
		switch fieldops.ErrorCode(err) {
		case "":
			w.Defects, w.CanDefects = defects, true
		case fieldops.EFORBIDDEN:
		default:
			return nil, err
		}
	}
	return w, nil
}

func (s *Server) handleCertificateCreate(w http.ResponseWriter, r *http.Request) {
	s.jobAction(w, r, "certificate", func(id int64) (string, string, error) {
		c, err := s.svc.Certificates.CreateCertificate(r.Context(), id, r.PostFormValue("type"))
		if err != nil {
			return "", "", err
		}
		return jobURL(id) + "#certificates", fmt.Sprintf("Draft %s certificate started.", certLabel(c.Type)), nil
	})
}

// certificateAction runs a move of a certificate and goes back to its
// job; a refusal about its state or the input comes back on the job page.
func (s *Server) certificateAction(w http.ResponseWriter, r *http.Request, move func(ctx context.Context, id int64) (*fieldops.Certificate, string, error)) {
	ctx := r.Context()
	id, ok := pathID(r)
	if !ok {
		s.fail(w, r, fieldops.Errorf(fieldops.ENOTFOUND, "Certificate not found."))
		return
	}
	c, flash, err := move(ctx, id)
	if err == nil {
		s.back(w, r, jobURL(c.JobID)+"#certificates", flash)
		return
	}
	if retype(err) {
		if c, ferr := s.svc.Certificates.FindCertificateByID(ctx, id); ferr == nil {
			s.renderJob(w, r, c.JobID, statusOf(err), err, typedFrom(r, fmt.Sprintf("issue-%d", id), err))
			return
		}
	}
	s.fail(w, r, err)
}

func (s *Server) handleCertificateSubmit(w http.ResponseWriter, r *http.Request) {
	s.certificateAction(w, r, func(ctx context.Context, id int64) (*fieldops.Certificate, string, error) {
		c, err := s.svc.Certificates.SubmitCertificate(ctx, id)
		return c, "Certificate sent for approval; those who approve certificates have been told.", err
	})
}

func (s *Server) handleCertificateApprove(w http.ResponseWriter, r *http.Request) {
	s.certificateAction(w, r, func(ctx context.Context, id int64) (*fieldops.Certificate, string, error) {
		c, err := s.svc.Certificates.ApproveCertificate(ctx, id)
		return c, "Certificate approved; those who issue certificates have been told.", err
	})
}

func (s *Server) handleCertificateIssue(w http.ResponseWriter, r *http.Request) {
	s.certificateAction(w, r, func(ctx context.Context, id int64) (*fieldops.Certificate, string, error) {
		var o fieldops.IssueOptions
		if v := strings.TrimSpace(r.PostFormValue("next_due")); v != "" {
			d, err := time.Parse(time.DateOnly, v)
			if err != nil {
				return nil, "", fieldops.Invalid("next_due", "The recommended date must be a date, such as 2031-01-31.")
			}
			o.RecommendedDue = &d
		}
		if v := strings.TrimSpace(r.PostFormValue("interval_months")); v != "" {
			m, err := strconv.Atoi(v)
			if err != nil || m <= 0 {
				return nil, "", fieldops.Invalid("interval_months", "The interval is a whole number of months, such as 60.")
			}
			o.IntervalMonths = m
		}
		c, err := s.svc.Certificates.IssueCertificate(ctx, id, o)
		if err != nil {
			return nil, "", err
		}
		flash := "Certificate issued."
		if c.NextDue != nil {
			flash = fmt.Sprintf("Certificate issued (%s); the site's next inspection is due %s.", c.Outcome, c.NextDue.Format("2 Jan 2006"))
		}
		return c, flash, nil
	})
}

func (s *Server) handleDefectLog(w http.ResponseWriter, r *http.Request) {
	s.jobAction(w, r, "defect", func(id int64) (string, string, error) {
		d, err := s.svc.Defects.LogDefect(r.Context(), id, r.PostFormValue("code"), r.PostFormValue("description"), r.PostFormValue("location"))
		if err != nil {
			return "", "", err
		}
		flash := fmt.Sprintf("%s defect recorded.", d.Code)
		if d.RemedialDue != nil {
			flash = fmt.Sprintf("%s defect recorded; the remedial is due %s.", d.Code, d.RemedialDue.Format("2 Jan 2006"))
		}
		if d.Code == "C1" {
			flash += " Managers and owners have been alerted."
		}
		return jobURL(id) + "#defects", flash, nil
	})
}

func (s *Server) handleDefectResolve(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, ok := pathID(r)
	if !ok {
		s.fail(w, r, fieldops.Errorf(fieldops.ENOTFOUND, "Defect not found."))
		return
	}
	d, err := s.svc.Defects.ResolveDefect(ctx, id, r.PostFormValue("resolution"))
	if err == nil {
		s.back(w, r, jobURL(d.JobID)+"#defects", fmt.Sprintf("%s defect resolved.", d.Code))
		return
	}
	if retype(err) {
		if d, ferr := s.svc.Defects.FindDefectByID(ctx, id); ferr == nil {
			s.renderJob(w, r, d.JobID, statusOf(err), err, typedFrom(r, fmt.Sprintf("resolve-%d", id), err))
			return
		}
	}
	s.fail(w, r, err)
}

// certLabel is a certificate type as people say it.
func certLabel(t string) string {
	switch t {
	case "eicr", "eic", "pat":
		return strings.ToUpper(t)
	}
	return strings.ReplaceAll(t, "_", " ")
}
