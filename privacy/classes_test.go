package privacy

import (
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
)

func TestClassesTable(t *testing.T) {
	want := []Class{CallRecords, Signalling, LabelsReports, ConsortiumEntries, Lists, CustomerLinks,
		ComplianceMedia, DSARCases, AuditLog, AccessLogs, ErrorLogs}
	cs := Classes()
	if len(cs) != len(want) {
		t.Fatalf("%d classes, want %d", len(cs), len(want))
	}
	for i, ci := range cs {
		t.Run(string(ci.Class), func(t *testing.T) {
			if ci.Class != want[i] {
				t.Errorf("class %d = %s, want %s", i, ci.Class, want[i])
			}
			if ci.Name == "" || ci.Purpose == "" || ci.Owner == "" || ci.RetainFrom == "" ||
				len(ci.Subjects) == 0 || len(ci.Data) == 0 || len(ci.Recipients) == 0 || len(ci.Security) == 0 {
				t.Errorf("incomplete entry: %+v", ci)
			}
			if !strings.HasPrefix(ci.LegalBasis, "Article 6(1)(") {
				t.Errorf("legal basis %q does not name an Article 6 ground", ci.LegalBasis)
			}
			if ci.Controller != "tenant" && ci.Controller != "ringfence" {
				t.Errorf("controller %q", ci.Controller)
			}
			ref := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			if ci.Min.Cutoff(ref).Before(ci.Default.Cutoff(ref)) || ci.Default.Cutoff(ref).Before(ci.Max.Cutoff(ref)) {
				t.Errorf("default %s outside [%s, %s]", ci.Default, ci.Min, ci.Max)
			}
		})
	}
	// Classes returns a copy.
	cs[0].Subjects[0] = "changed"
	cs[0].Default = Days(1)
	if c, _ := Lookup(CallRecords); c.Subjects[0] == "changed" || c.Default != Months(13) {
		t.Error("Classes shares memory with the table")
	}
}

// TestRetentionBounds pins the retention the brief and ARCHITECTURE.md set.
func TestRetentionBounds(t *testing.T) {
	tests := []struct {
		class              Class
		def, lowest, upper Period
	}{
		{CallRecords, Months(13), Months(1), Months(72)},
		{Signalling, Months(13), Months(1), Months(72)},
		{ConsortiumEntries, Months(13), Months(1), Years(6)},
		{ComplianceMedia, Years(5), Months(1), Years(7)},
		{DSARCases, Years(2), Years(2), Years(2)},
		{AuditLog, Years(6), Years(6), Years(6)},
		{AccessLogs, Days(7), Days(7), Days(7)},
		{ErrorLogs, Days(7), Days(7), Days(7)},
	}
	for _, tt := range tests {
		t.Run(string(tt.class), func(t *testing.T) {
			ci, ok := Lookup(tt.class)
			if !ok {
				t.Fatal("missing")
			}
			if ci.Default != tt.def || ci.Min != tt.lowest || ci.Max != tt.upper {
				t.Errorf("retention %s [%s, %s], want %s [%s, %s]", ci.Default, ci.Min, ci.Max, tt.def, tt.lowest, tt.upper)
			}
		})
	}
}

func TestRetentionValidate(t *testing.T) {
	tests := []struct {
		name string
		r    Retention
		msg  string // "" when valid; else a prefix of the message
	}{
		{"nil is every default", nil, ""},
		{"within bounds", Retention{CallRecords: Months(24), ConsortiumEntries: Years(6), ComplianceMedia: Years(7)}, ""},
		{"lowest bound", Retention{CallRecords: Months(1)}, ""},
		{"fixed class set to its fixed value", Retention{AccessLogs: Days(7)}, ""},
		{"call records above 72 months", Retention{CallRecords: Months(73)}, "retention.call_records: must be between 1 month and 6 years"},
		{"call records zero", Retention{CallRecords: Months(0)}, "retention.call_records: must be between"},
		{"consortium above 6 years", Retention{ConsortiumEntries: Months(73)}, "retention.consortium_entries: must be between"},
		{"media above 7 years", Retention{ComplianceMedia: Years(8)}, "retention.compliance_media: must be between"},
		{"days for a monthly class", Retention{Signalling: Days(30)}, "retention.signalling: must be whole months"},
		{"access logs longer", Retention{AccessLogs: Days(30)}, "retention.access_logs: fixed at 7 days"},
		{"audit log shorter", Retention{AuditLog: Years(1)}, "retention.audit_log: fixed at 6 years"},
		{"DSAR cases", Retention{DSARCases: Years(3)}, "retention.dsar_cases: fixed at 2 years"},
		{"unknown class", Retention{"photos": Months(1), "emails": Months(1)}, `retention: unknown data class "emails"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.r.Validate()
			if tt.msg == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if call.ErrorCode(err) != call.Invalid || !strings.HasPrefix(call.ErrorMessage(err), tt.msg) {
				t.Fatalf("Validate = %v, want invalid %q", err, tt.msg)
			}
		})
	}
}

func TestRetentionEffective(t *testing.T) {
	r := Retention{CallRecords: Months(24)}
	tests := []struct {
		class Class
		want  Period
	}{
		{CallRecords, Months(24)},
		{Signalling, Months(13)},
		{AccessLogs, Days(7)},
		{ComplianceMedia, Years(5)},
		{"photos", Period{}},
	}
	for _, tt := range tests {
		t.Run(string(tt.class), func(t *testing.T) {
			if got := r.Effective(tt.class); got != tt.want {
				t.Errorf("Effective = %s, want %s", got, tt.want)
			}
		})
	}
	if got := Retention(nil).Effective(AuditLog); got != Years(6) {
		t.Errorf("nil Effective(audit_log) = %s", got)
	}
}

func TestPeriod(t *testing.T) {
	now := time.Date(2026, time.March, 31, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		p      Period
		text   string
		cutoff string
	}{
		{Months(13), "13 months", "2025-02-28"}, // no 31 February: its last day
		{Years(6), "6 years", "2020-03-31"},
		{Days(7), "7 days", "2026-03-24"},
		{Months(1), "1 month", "2026-02-28"},
		{Years(2), "2 years", "2024-03-31"},
		{Period{Months: 2, Days: 1}, "2 months 1 day", "2026-01-30"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			if got := tt.p.String(); got != tt.text {
				t.Errorf("String = %q, want %q", got, tt.text)
			}
			got := tt.p.Cutoff(now)
			if s := got.Format(time.DateOnly); s != tt.cutoff {
				t.Errorf("Cutoff = %s, want %s", s, tt.cutoff)
			}
			if got.Hour() != 10 {
				t.Errorf("Cutoff = %s, want the clock time kept", got)
			}
		})
	}
}
