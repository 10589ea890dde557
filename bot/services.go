package bot

import "github.com/fieldops/fieldops"

// Services are the domain services the bot calls. The bot decides
// nothing itself: every permission and organisation check is theirs.
type Services struct {
	Telegram     fieldops.TelegramService
	Inbox        fieldops.Inbox
	Outbox       fieldops.Outbox
	Orgs         fieldops.OrganisationService
	Members      fieldops.MemberService
	Jobs         fieldops.JobService
	Field        fieldops.FieldWorkService
	Evidence     fieldops.JobEvidenceService
	Defects      fieldops.DefectService
	Certificates fieldops.CertificateService
	Capacity     fieldops.CapacityService
	Mailer       fieldops.Mailer // nil when e-mail is not configured
}
