package fieldops

import (
	"bytes"
	"fmt"
	"html/template"
	"strings"
	"time"
	_ "time/tzdata" // UK dates in e-mails, also on machines without zone data
)

// ukTime is the zone of the dates in e-mails.
var ukTime = func() *time.Location {
	l, err := time.LoadLocation("Europe/London")
	if err != nil {
		return time.UTC // not reached: time/tzdata is linked in
	}
	return l
}()

// oneLine keeps a name on one line: control characters become spaces, so
// a name cannot start a new header or paragraph.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }), " ")
}

// invitationData fills both bodies of the invitation e-mail.
type invitationData struct {
	Inviter, Org, Role, Link, Until string
}

var invitationHTML = template.Must(template.New("invitation").Parse(`<!DOCTYPE html>
<html lang="en-GB">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>Invitation to {{.Org}}</title></head>
<body style="margin:0;padding:24px;background:#f5f5f4;font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:1.5;color:#1c1917">
<div style="max-width:560px;margin:0 auto;background:#ffffff;padding:24px;border-radius:8px">
<p>Hello,</p>
<p><strong>{{.Inviter}}</strong> has invited you to join <strong>{{.Org}}</strong> on fieldops, where the team sees its jobs, customers and schedule.</p>
<p>Your role will be: <strong>{{.Role}}</strong>.</p>
<p style="margin:28px 0"><a href="{{.Link}}" style="background:#2563eb;color:#ffffff;padding:12px 20px;border-radius:6px;text-decoration:none;font-weight:bold">Accept the invitation</a></p>
<p>You will choose your name and a password. If the button does not work, copy this link into your web browser:<br>
<span style="word-break:break-all">{{.Link}}</span></p>
<p>The link works once, until {{.Until}} (UK time). If it has run out, ask {{.Inviter}} to send you a new one.</p>
<p style="color:#57534e">Not expecting this? You can ignore this e-mail: nothing happens unless you open the link and accept. Please don't forward it, as anyone with the link could use it.</p>
</div>
</body>
</html>
`))

// InvitationMail writes the e-mail that carries an invitation's link,
// for someone who may never have heard of fieldops.
func InvitationMail(inv *Invitation, link string) Mail {
	d := invitationData{
		Inviter: oneLine(inv.InvitedByName),
		Org:     oneLine(inv.OrgName),
		Role:    inv.Role.Label(),
		Link:    link,
		Until:   inv.ExpiresAt.In(ukTime).Format("15:04 on Monday 2 January 2006"),
	}
	if d.Inviter == "" {
		d.Inviter = "Your colleague"
	}
	text := fmt.Sprintf(`Hello,

%s has invited you to join %s on fieldops, where the team sees its jobs, customers and schedule.

Your role will be: %s.

To accept, open this link and choose your name and a password:

%s

The link works once, until %s (UK time). If it has run out, ask %s to send you a new one.

Not expecting this? You can ignore this e-mail: nothing happens unless you open the link and accept. Please don't forward it, as anyone with the link could use it.
`, d.Inviter, d.Org, d.Role, d.Link, d.Until, d.Inviter)
	var html bytes.Buffer
	if err := invitationHTML.Execute(&html, d); err != nil {
		html.Reset() // not reached: the template and its data are fixed; send text only
	}
	return Mail{
		To:      inv.Email,
		Subject: fmt.Sprintf("%s invited you to %s on fieldops", d.Inviter, d.Org),
		Text:    text,
		HTML:    html.String(),
	}
}
