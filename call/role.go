package call

// Role is what a person or integration may do within its tenant. Every API
// key and console user has exactly one.
type Role string

const (
	// Admin manages the tenant's configuration (lists, routes, policy,
	// keys, retention, consortium membership) and may do what an analyst
	// does.
	Admin Role = "admin"
	// Analyst reviews calls and labels them, and files consortium reports.
	Analyst Role = "analyst"
	// Auditor reads and verifies the audit log; nothing else.
	Auditor Role = "auditor"
	// PrivacyOfficer handles data-subject rights cases, legal holds,
	// consent and retention.
	PrivacyOfficer Role = "privacy_officer"
	// ComplianceOfficer reads the compliance archive.
	ComplianceOfficer Role = "compliance_officer"
	// Integration is a machine: an IVR or contact-centre platform that
	// screens calls and reports their end. It reads no stored record.
	Integration Role = "integration"
	// Recorder is a machine that ingests the compliance archive (users,
	// contacts, call records, SMS, recordings). It reads nothing back
	// beyond the status of its own uploads.
	Recorder Role = "recorder"
)

// Roles lists every role, in the order documentation shows them.
var Roles = []Role{Admin, Analyst, Auditor, PrivacyOfficer, ComplianceOfficer, Integration, Recorder}

// ParseRole checks s names a role.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", Errorf(Invalid, "role: must be one of admin, analyst, auditor, privacy_officer, compliance_officer, integration, recorder")
}

// Principal is who is acting: a tenant's API key or console user.
type Principal struct {
	Tenant string
	Role   Role
	Actor  string // "key:<name>" or "user:<id>": who, in the audit log
}
