package privacy

import (
	"fmt"
	"sort"
	"time"

	"github.com/ringfence/ringfence/call"
)

// Class names a data class: a kind of personal data ringfence holds, with
// one purpose, legal basis, retention and owner.
type Class string

const (
	CallRecords       Class = "call_records"
	Signalling        Class = "signalling"
	LabelsReports     Class = "labels_reports"
	ConsortiumEntries Class = "consortium_entries"
	Lists             Class = "lists"
	CustomerLinks     Class = "customer_links"
	ComplianceMedia   Class = "compliance_media"
	DSARCases         Class = "dsar_cases"
	AuditLog          Class = "audit_log"
	AccessLogs        Class = "access_logs"
	ErrorLogs         Class = "error_logs"
)

// Valid reports whether c is in the Classes table.
func (c Class) Valid() bool {
	_, ok := Lookup(c)
	return ok
}

// Period is a retention period in calendar months and days. Months count as
// calendar months, the way people read them (see Cutoff).
type Period struct {
	Months int `json:"months,omitempty"`
	Days   int `json:"days,omitempty"`
}

// Months returns a Period of n calendar months.
func Months(n int) Period { return Period{Months: n} }

// Years returns a Period of n years.
func Years(n int) Period { return Period{Months: 12 * n} }

// Days returns a Period of n days.
func Days(n int) Period { return Period{Days: n} }

// Cutoff returns the instant before which data is older than p at now:
// Months calendar months back, on the same day of the month or that month's
// last day when it has no such day (1 month before 31 March is 28 or 29
// February, not 3 March as time.AddDate would normalise), then Days days
// back, at now's clock time in now's location.
func (p Period) Cutoff(now time.Time) time.Time {
	y, m, d := now.Date()
	total := y*12 + int(m-1) - p.Months
	ny, nm := floorDiv(total, 12), time.Month(floorMod(total, 12)+1)
	hh, mm, ss := now.Clock()
	return time.Date(ny, nm, min(d, daysIn(ny, nm))-p.Days, hh, mm, ss, now.Nanosecond(), now.Location())
}

// IsZero reports whether p is empty.
func (p Period) IsZero() bool { return p.Months == 0 && p.Days == 0 }

// String renders p for people: "13 months", "6 years", "7 days".
func (p Period) String() string {
	unit := func(n int, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	switch {
	case p.IsZero():
		return "0 days"
	case p.Days == 0 && p.Months%12 == 0:
		return unit(p.Months/12, "year")
	case p.Days == 0:
		return unit(p.Months, "month")
	case p.Months == 0:
		return unit(p.Days, "day")
	}
	return unit(p.Months, "month") + " " + unit(p.Days, "day")
}

// ClassInfo describes one data class: the facts a record of processing
// (UK GDPR Article 30) states, and the retention bounds a tenant may set.
type ClassInfo struct {
	Class      Class    `json:"class"`
	Name       string   `json:"name"`
	Controller string   `json:"controller"` // who decides the purpose: "tenant" (ringfence processes for it) or "ringfence"
	Purpose    string   `json:"purpose"`
	LegalBasis string   `json:"legal_basis"` // UK GDPR Article 6 ground (and Article 10 condition where relevant)
	Subjects   []string `json:"subjects"`    // categories of data subjects
	Data       []string `json:"data"`        // categories of personal data
	Recipients []string `json:"recipients"`
	Default    Period   `json:"default_retention"`
	Min        Period   `json:"min_retention"` // Min == Max: fixed, not configurable
	Max        Period   `json:"max_retention"`
	RetainFrom string   `json:"retain_from"` // the event the period runs from
	Owner      string   `json:"owner"`       // the role answerable for the class
	Security   []string `json:"security"`
}

// Configurable reports whether a tenant may set the class's retention.
func (ci ClassInfo) Configurable() bool { return ci.Min != ci.Max }

// Common security measures, named once so the table reads.
var (
	secSealed  = "phone numbers and signalling sealed with AES-256-GCM under a per-tenant data key wrapped by the master key; erasing a tenant destroys its key"
	secPseudo  = "looked up by keyed pseudonym (HMAC-SHA-256 per tenant), never by plain hash"
	secScoped  = "every query scoped by tenant; role-based access (admin, analyst, auditor, privacy officer)"
	secAudited = "every read by a person audited in the hash-chained audit log"
	secTLS     = "TLS 1.2 or newer on every listener that takes TLS"
	secLocal   = "files mode 0600 in a directory mode 0700 on the node"
)

// classes is the table; Classes returns a copy.
var classes = []ClassInfo{
	{
		Class: CallRecords, Name: "Call records", Controller: "tenant",
		Purpose:    "Screen inbound calls for fraud before they are answered, explain each verdict, and learn from confirmed outcomes.",
		LegalBasis: "Article 6(1)(f) legitimate interests: preventing fraud (recital 47) against the tenant and its customers.",
		Subjects:   []string{"callers", "the tenant's customers and staff who are called"},
		Data:       []string{"caller and dialled numbers", "call times, duration and result", "ingress and egress route", "risk score, action and markers", "review status", "the tenant's pseudonymised user id, if supplied"},
		Recipients: []string{"the tenant's analysts and privacy officers", "the SBC or contact-centre platform that asked for the verdict (the verdict only)"},
		Default:    Months(13), Min: Months(1), Max: Months(72), RetainFrom: "the call's start",
		Owner:    "the tenant's privacy officer",
		Security: []string{secSealed, secPseudo, secScoped, secAudited, secTLS},
	},
	{
		Class: Signalling, Name: "Signalling data", Controller: "tenant",
		Purpose:    "Evidence for a verdict: the SIP headers that matter to screening (From, P-Asserted-Identity, Identity/PASSporT and its verification, verstat, Privacy, Diversion/History-Info, User-Agent).",
		LegalBasis: "Article 6(1)(f) legitimate interests: preventing fraud (recital 47).",
		Subjects:   []string{"callers", "the tenant's customers and staff who are called"},
		Data:       []string{"SIP headers naming numbers and devices", "STIR/SHAKEN attestation and verification result"},
		Recipients: []string{"the tenant's analysts"},
		Default:    Months(13), Min: Months(1), Max: Months(72), RetainFrom: "the call's start",
		Owner:    "the tenant's privacy officer",
		Security: []string{secSealed, secScoped, secAudited, secTLS},
	},
	{
		Class: LabelsReports, Name: "Labels and fraud reports", Controller: "tenant",
		Purpose:    "Record analysts' confirmations (fraud, genuine, disputed) and fraud reports, to tune screening and train the model.",
		LegalBasis: "Article 6(1)(f) legitimate interests: preventing fraud; allegations of fraud are criminal offence data, processed under Article 10 with DPA 2018 Schedule 1 paragraph 10 (preventing or detecting unlawful acts).",
		Subjects:   []string{"callers reported or confirmed as fraudulent or genuine"},
		Data:       []string{"label and fraud type", "confidence and evidence reference", "the analyst's account id"},
		Recipients: []string{"the tenant's analysts", "the consortium, for confirmed fraud the tenant chooses to share"},
		Default:    Months(24), Min: Months(1), Max: Months(72), RetainFrom: "the label or report",
		Owner:    "the tenant's fraud lead",
		Security: []string{secPseudo, secScoped, secAudited, secTLS},
	},
	{
		Class: ConsortiumEntries, Name: "Consortium entries", Controller: "ringfence",
		Purpose:    "Share confirmed fraud among member organisations so that each can screen numbers others have confirmed.",
		LegalBasis: "Article 6(1)(f) legitimate interests: preventing fraud across members; criminal offence data under Article 10 with DPA 2018 Schedule 1 paragraph 14 (preventing fraud, as an anti-fraud organisation).",
		Subjects:   []string{"callers confirmed as fraudulent by a member"},
		Data:       []string{"consortium pseudonym of the number", "fraud type, confidence, evidence reference", "reporting member (never disclosed to other members)", "report and expiry times"},
		Recipients: []string{"contributing members: how many distinct members reported a number and when, never who"},
		Default:    Months(13), Min: Months(1), Max: Years(6), RetainFrom: "the report",
		Owner:    "the ringfence consortium's data protection officer",
		Security: []string{"keyed by a consortium pseudonym under a separate key", secScoped, "every consortium read and write audited", secTLS},
	},
	{
		Class: Lists, Name: "Allow, deny and do-not-originate lists", Controller: "tenant",
		Purpose:    "Let the tenant always pass, always screen out, or mark as inbound-only (do-not-originate) chosen numbers.",
		LegalBasis: "Article 6(1)(f) legitimate interests: preventing fraud and spoofing of the tenant's own numbers.",
		Subjects:   []string{"callers the tenant listed"},
		Data:       []string{"listed number", "list, reason and expiry", "who listed it"},
		Recipients: []string{"the tenant's analysts and administrators"},
		Default:    Months(24), Min: Months(1), Max: Months(72), RetainFrom: "the entry's last change",
		Owner:    "the tenant's fraud lead",
		Security: []string{secSealed, secPseudo, secScoped, secAudited, secTLS},
	},
	{
		Class: CustomerLinks, Name: "Customer links", Controller: "tenant",
		Purpose:    "Recognise a caller number previously seen with the tenant's customer, as a signal that the call is genuine.",
		LegalBasis: "Article 6(1)(f) legitimate interests: preventing fraud against the tenant's customers.",
		Subjects:   []string{"the tenant's customers"},
		Data:       []string{"pseudonym of the caller number", "the tenant's pseudonymised user id", "first and last seen"},
		Recipients: []string{"the screening engine only"},
		Default:    Months(13), Min: Months(1), Max: Months(72), RetainFrom: "the link's last sighting",
		Owner:    "the tenant's privacy officer",
		Security: []string{secPseudo, secScoped, secTLS},
	},
	{
		Class: ComplianceMedia, Name: "Compliance media", Controller: "tenant",
		Purpose:    "Keep call recordings, SMS and call records that the tenant must keep by regulation (for example FCA record keeping).",
		LegalBasis: "Article 6(1)(c) legal obligation: the tenant's record-keeping duties.",
		Subjects:   []string{"callers", "the tenant's customers and staff"},
		Data:       []string{"recordings and messages", "call metadata", "directory entries of staff"},
		Recipients: []string{"the tenant's compliance officers", "regulators on lawful request"},
		Default:    Years(5), Min: Months(1), Max: Years(7), RetainFrom: "the recording",
		Owner:    "the tenant's compliance officer",
		Security: []string{secSealed, secScoped, "access limited to the compliance officer role", secAudited, secTLS},
	},
	{
		Class: DSARCases, Name: "Data-subject request cases", Controller: "tenant",
		Purpose:    "Handle and evidence data-subject rights requests (access, portability, rectification, erasure, restriction, objection, consent withdrawal).",
		LegalBasis: "Article 6(1)(c) legal obligation: UK GDPR Articles 12-22 and accountability (Article 5(2)).",
		Subjects:   []string{"requesters (data subjects and their representatives)"},
		Data:       []string{"subject identifiers (sealed)", "case timeline, identity-check state and outcome", "completion receipt"},
		Recipients: []string{"the tenant's privacy officers", "the requester", "the ICO on request"},
		Default:    Years(2), Min: Years(2), Max: Years(2), RetainFrom: "the case's closure",
		Owner:    "the tenant's privacy officer",
		Security: []string{secSealed, secScoped, "access limited to the privacy officer role", secAudited, secTLS},
	},
	{
		Class: AuditLog, Name: "Audit log", Controller: "tenant",
		Purpose:    "Show who read personal data and every privacy operation, tamper-evidently.",
		LegalBasis: "Article 6(1)(c) legal obligation: accountability and security of processing (Articles 5(2) and 32).",
		Subjects:   []string{"staff and API clients of the tenant", "data subjects whose records were read (by record id or pseudonym)"},
		Data:       []string{"actor, action, object id, time", "hash chain and signed checkpoints"},
		Recipients: []string{"the tenant's auditors", "regulators on lawful request"},
		Default:    Years(6), Min: Years(6), Max: Years(6), RetainFrom: "the entry",
		Owner:    "the tenant's auditor",
		Security: []string{"append-only, hash-chained, signed checkpoints", "holds record ids and pseudonyms, never phone numbers", secScoped},
	},
	{
		Class: AccessLogs, Name: "Access logs", Controller: "ringfence",
		Purpose:    "Operate and secure the service: detect abuse and diagnose faults of the HTTP and SIP front ends.",
		LegalBasis: "Article 6(1)(f) legitimate interests: network and information security (recital 49).",
		Subjects:   []string{"API clients, console users and SIP peers"},
		Data:       []string{"client address truncated to /24 (IPv4) or /48 (IPv6) plus a keyed hash", "method, route template (no query string), status, duration, size"},
		Recipients: []string{"ringfence operators"},
		Default:    Days(7), Min: Days(7), Max: Days(7), RetainFrom: "the day of the entry",
		Owner:    "the operator's security lead",
		Security: []string{"client addresses pseudonymised before writing", secLocal, "purged daily"},
	},
	{
		Class: ErrorLogs, Name: "Error logs", Controller: "ringfence",
		Purpose:    "Diagnose faults of the service.",
		LegalBasis: "Article 6(1)(f) legitimate interests: running a reliable service.",
		Subjects:   []string{"API clients, console users and SIP peers (indirectly)"},
		Data:       []string{"error messages with record ids or pseudonyms, never phone numbers or secrets"},
		Recipients: []string{"ringfence operators"},
		Default:    Days(7), Min: Days(7), Max: Days(7), RetainFrom: "the day of the entry",
		Owner:    "the operator's security lead",
		Security: []string{"no phone numbers or secrets logged", secLocal, "purged daily"},
	},
}

// Classes returns the data-class table in a stable order. The slice is a
// copy; changing it changes nothing here.
func Classes() []ClassInfo {
	out := make([]ClassInfo, len(classes))
	for i, c := range classes {
		c.Subjects = append([]string(nil), c.Subjects...)
		c.Data = append([]string(nil), c.Data...)
		c.Recipients = append([]string(nil), c.Recipients...)
		c.Security = append([]string(nil), c.Security...)
		out[i] = c
	}
	return out
}

// Lookup returns the table entry for c.
func Lookup(c Class) (ClassInfo, bool) {
	for _, ci := range classes {
		if ci.Class == c {
			return ci, true
		}
	}
	return ClassInfo{}, false
}

// Retention is a tenant's retention settings: a period per data class. A
// class absent from the map keeps its default. The zero value (nil) means
// every default.
type Retention map[Class]Period

// Validate reports the first problem with r as an *call.Error (Invalid)
// naming the class: an unknown class, a class whose retention is fixed
// (unless set to that fixed period), a period not in whole months for a
// class set in months, or a period outside the class's bounds. Classes are
// checked in table order so the error is deterministic.
func (r Retention) Validate() error {
	for c := range r {
		if !c.Valid() {
			keys := make([]string, 0, len(r))
			for k := range r {
				if !k.Valid() {
					keys = append(keys, string(k))
				}
			}
			sort.Strings(keys)
			return call.Errorf(call.Invalid, "retention: unknown data class %q", keys[0])
		}
	}
	for _, ci := range classes {
		p, ok := r[ci.Class]
		if !ok {
			continue
		}
		switch {
		case !ci.Configurable() && p != ci.Default:
			return call.Errorf(call.Invalid, "retention.%s: fixed at %s, not configurable", ci.Class, ci.Default)
		case !ci.Configurable():
		case p.Days != 0 || p.Months < 0:
			return call.Errorf(call.Invalid, "retention.%s: must be whole months", ci.Class)
		case p.Months < ci.Min.Months || p.Months > ci.Max.Months:
			return call.Errorf(call.Invalid, "retention.%s: must be between %s and %s", ci.Class, ci.Min, ci.Max)
		}
	}
	return nil
}

// Effective returns the period in force for class c: the tenant's setting
// if present, else the class's default. It returns the zero Period for an
// unknown class. Call Validate first; Effective does not re-check bounds.
func (r Retention) Effective(c Class) Period {
	if p, ok := r[c]; ok {
		return p
	}
	ci, _ := Lookup(c)
	return ci.Default
}
