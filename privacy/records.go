package privacy

import (
	"bytes"
	"fmt"
	"strings"
)

// Record is one entry of the records of processing activities (UK GDPR
// Article 30), one per data class, shaped for JSON (GET /v1/privacy/records).
type Record struct {
	Class        Class    `json:"class"`
	Activity     string   `json:"activity"`
	Controller   string   `json:"controller"`
	Purpose      string   `json:"purpose"`
	LegalBasis   string   `json:"legal_basis"`
	Subjects     []string `json:"data_subjects"`
	Data         []string `json:"personal_data"`
	Recipients   []string `json:"recipients"`
	Transfers    string   `json:"international_transfers"`
	Retention    string   `json:"retention"`
	Configurable string   `json:"configurable_retention"`
	Owner        string   `json:"owner"`
	Security     []string `json:"security_measures"`
}

// noTransfers is what every record says of transfers outside the UK: the
// software sends personal data nowhere but the operator's own nodes.
const noTransfers = "none by ringfence: data stays on the operator's nodes and database"

// Records returns the records of processing, one per data class in table
// order. The slices are fresh copies.
func Records() []Record {
	cs := Classes()
	out := make([]Record, len(cs))
	for i, c := range cs {
		conf := "no (fixed)"
		if c.Configurable() {
			conf = fmt.Sprintf("%s to %s", c.Min, c.Max)
		}
		out[i] = Record{
			Class:        c.Class,
			Activity:     c.Name,
			Controller:   c.Controller,
			Purpose:      c.Purpose,
			LegalBasis:   c.LegalBasis,
			Subjects:     c.Subjects,
			Data:         c.Data,
			Recipients:   c.Recipients,
			Transfers:    noTransfers,
			Retention:    fmt.Sprintf("%s from %s (default)", c.Default, c.RetainFrom),
			Configurable: conf,
			Owner:        c.Owner,
			Security:     c.Security,
		}
	}
	return out
}

// RecordsMarkdown renders Records as the Markdown page
// docs/records-of-processing.md.
func RecordsMarkdown() []byte {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Records of processing activities\n\n")
	w("<!-- Generated from privacy.Classes by\n")
	w("     go test ./privacy -run TestRecordsDoc -update\n")
	w("     Do not edit by hand: change the table in privacy/classes.go. -->\n\n")
	w("UK GDPR Article 30 asks each controller (and each processor) to keep a record of\n")
	w("its processing. ringfence keeps one entry per data class; the same records are\n")
	w("served as JSON at `GET /v1/privacy/records`. Where the controller is \"tenant\",\n")
	w("the tenant (the organisation whose calls are screened) is controller and the\n")
	w("operator of ringfence processes on its behalf; for the consortium and the\n")
	w("service's own logs the operator is controller. A tenant adds its own name,\n")
	w("contact details and data protection officer to these records.\n\n")
	w("## Summary\n\n")
	w("| class | activity | controller | legal basis | default retention | tenant may set |\n")
	w("| --- | --- | --- | --- | --- | --- |\n")
	for _, r := range Records() {
		w("| `%s` | %s | %s | %s | %s | %s |\n", r.Class, r.Activity, r.Controller,
			cell(firstSentence(r.LegalBasis)), cell(r.Retention), r.Configurable)
	}
	for _, r := range Records() {
		w("\n## %s (`%s`)\n\n", r.Activity, r.Class)
		w("- **Controller:** %s\n", r.Controller)
		w("- **Purpose:** %s\n", r.Purpose)
		w("- **Legal basis:** %s\n", r.LegalBasis)
		w("- **Data subjects:** %s\n", strings.Join(r.Subjects, "; "))
		w("- **Personal data:** %s\n", strings.Join(r.Data, "; "))
		w("- **Recipients:** %s\n", strings.Join(r.Recipients, "; "))
		w("- **International transfers:** %s\n", r.Transfers)
		w("- **Retention:** %s; tenant may set: %s\n", r.Retention, r.Configurable)
		w("- **Owner:** %s\n", r.Owner)
		w("- **Security measures:**\n")
		for _, s := range r.Security {
			w("  - %s\n", s)
		}
	}
	return b.Bytes()
}

// firstSentence returns s up to its first ": " (the Article 6 ground).
func firstSentence(s string) string {
	if i := strings.Index(s, ": "); i > 0 {
		return s[:i]
	}
	return s
}

func cell(s string) string { return strings.ReplaceAll(s, "|", "\\|") }
