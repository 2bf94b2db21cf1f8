package privacy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
)

const testNumber = "+441632960471"

func mustCase(t *testing.T, typ Type, received time.Time) *Case {
	t.Helper()
	c, err := NewCase("case-1", "tenant-a", typ, Subject{Number: testNumber, UserRef: "cust-88"}, received)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewCaseInvalid(t *testing.T) {
	now := day(2026, time.September, 3)
	tests := []struct {
		name    string
		id      string
		typ     Type
		subject Subject
		at      time.Time
		field   string
	}{
		{"bad id", "", Access, Subject{Number: testNumber}, now, "id"},
		{"unknown type", "c1", Type("delete_everything"), Subject{Number: testNumber}, now, "type"},
		{"no identifier", "c1", Access, Subject{}, now, "subject"},
		{"national number", "c1", Access, Subject{Number: "01632960471"}, now, "subject.number"},
		{"number with spaces", "c1", Access, Subject{Number: "+44 1632 960471"}, now, "subject.number"},
		{"control character in ref", "c1", Access, Subject{UserRef: "a\nb"}, now, "subject.user_ref"},
		{"no receipt time", "c1", Access, Subject{UserRef: "u1"}, time.Time{}, "received"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewCase(tt.id, "tenant-a", tt.typ, tt.subject, tt.at)
			if call.ErrorCode(err) != call.Invalid {
				t.Fatalf("err = %v, want code invalid", err)
			}
			msg := call.ErrorMessage(err)
			if !strings.HasPrefix(msg, tt.field+":") {
				t.Errorf("message %q does not name %s", msg, tt.field)
			}
			if tt.subject.Number != "" && strings.Contains(msg, strings.ReplaceAll(tt.subject.Number, " ", "")[3:]) {
				t.Errorf("message %q repeats the number", msg)
			}
		})
	}
	for _, typ := range Types {
		if _, err := NewCase("c1", "t1", typ, Subject{UserRef: "u"}, now); err != nil {
			t.Errorf("type %s: %v", typ, err)
		}
	}
}

// TestTransitions drives every transition from every status and checks the
// state machine allows exactly the documented ones.
func TestTransitions(t *testing.T) {
	t0 := day(2026, time.September, 3)
	later := t0.Add(time.Hour)
	receipt := Receipt{Stores: []StoreResult{{Store: "sqlite", Class: CallRecords, Found: 2, Done: 2, Action: ActionDeleted}}}
	ops := map[string]func(c *Case) error{
		"request_identity": func(c *Case) error { return c.RequestIdentity(later) },
		"confirm_identity": func(c *Case) error { return c.ConfirmIdentity(later) },
		"fail_identity":    func(c *Case) error { return c.FailIdentity(later, "documents did not match") },
		"pause":            func(c *Case) error { return c.Pause(later, "which accounts?") },
		"resume":           func(c *Case) error { return c.Resume(later) },
		"extend":           func(c *Case) error { return c.Extend(later, later, 1, "complex") },
		"complete":         func(c *Case) error { return c.Complete(later, receipt) },
		"refuse":           func(c *Case) error { return c.Refuse(later, "manifestly excessive") },
	}
	// reach puts a fresh case into status s.
	reach := map[Status][]func(c *Case) error{
		Open:             nil,
		AwaitingIdentity: {func(c *Case) error { return c.RequestIdentity(t0) }},
		InProgress:       {func(c *Case) error { return c.ConfirmIdentity(t0) }},
		Paused:           {func(c *Case) error { return c.ConfirmIdentity(t0) }, func(c *Case) error { return c.Pause(t0, "fee") }},
		Completed:        {func(c *Case) error { return c.ConfirmIdentity(t0) }, func(c *Case) error { return c.Complete(t0, receipt) }},
		Refused:          {func(c *Case) error { return c.Refuse(t0, "unfounded") }},
	}
	// allowed[from][op] = status after.
	allowed := map[Status]map[string]Status{
		Open:             {"request_identity": AwaitingIdentity, "confirm_identity": InProgress, "fail_identity": Refused, "refuse": Refused},
		AwaitingIdentity: {"confirm_identity": InProgress, "fail_identity": Refused, "refuse": Refused},
		InProgress:       {"pause": Paused, "extend": InProgress, "complete": Completed, "refuse": Refused},
		Paused:           {"resume": InProgress, "extend": Paused, "refuse": Refused},
		Completed:        {},
		Refused:          {},
	}
	for from, steps := range reach {
		for op, do := range ops {
			t.Run(fmt.Sprintf("%s/%s", from, op), func(t *testing.T) {
				c := mustCase(t, Erasure, t0)
				for _, s := range steps {
					if err := s(c); err != nil {
						t.Fatal(err)
					}
				}
				if c.Status != from {
					t.Fatalf("setup reached %s, want %s", c.Status, from)
				}
				n := len(c.Events)
				err := do(c)
				want, ok := allowed[from][op]
				if !ok {
					if call.ErrorCode(err) != call.Conflict {
						t.Fatalf("err = %v, want conflict", err)
					}
					if c.Status != from || len(c.Events) != n {
						t.Errorf("refused transition changed the case")
					}
					return
				}
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if c.Status != want {
					t.Errorf("status = %s, want %s", c.Status, want)
				}
				if len(c.Events) != n+1 {
					t.Errorf("events = %d, want %d", len(c.Events), n+1)
				}
			})
		}
	}
}

func TestTransitionChecks(t *testing.T) {
	t0 := day(2026, time.September, 10)
	tests := []struct {
		name string
		do   func(c *Case) error
	}{
		{"event before the last one", func(c *Case) error { return c.ConfirmIdentity(t0.Add(-time.Hour)) }},
		{"zero time", func(c *Case) error { return c.ConfirmIdentity(time.Time{}) }},
		{"refuse without reason", func(c *Case) error { return c.Refuse(t0, "  ") }},
		{"reason with a phone number", func(c *Case) error { return c.Refuse(t0, "caller 01632 960471 is vexatious") }},
		{"reason with an international number", func(c *Case) error { return c.Refuse(t0, "caller +44 (0)1632 960471") }},
		{"pause without reason", func(c *Case) error {
			if err := c.ConfirmIdentity(t0); err != nil {
				return err
			}
			return c.Pause(t0, "")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustCase(t, Access, t0)
			if err := tt.do(c); call.ErrorCode(err) != call.Invalid {
				t.Fatalf("err = %v, want invalid", err)
			}
		})
	}
}

func TestReasonWithDate(t *testing.T) {
	t0 := day(2026, time.September, 10)
	c := mustCase(t, Access, t0)
	if err := c.Refuse(t0, "repeat of the request of 2026-09-03 (case 12)"); err != nil {
		t.Fatal(err)
	}
}

func TestComplete(t *testing.T) {
	t0 := day(2026, time.September, 3)
	done := t0.Add(48 * time.Hour)
	tests := []struct {
		name    string
		stores  []StoreResult
		outcome Outcome
		code    string
	}{
		{"everything deleted", []StoreResult{
			{Store: "sqlite", Class: CallRecords, Found: 12, Done: 12, Action: ActionDeleted},
			{Store: "sqlite", Class: Signalling, Found: 12, Done: 12, Action: ActionDeleted},
		}, Complied, ""},
		{"nothing held", []StoreResult{{Store: "sqlite", Class: CallRecords, Action: ActionNone}}, NoData, ""},
		{"kept under a legal hold", []StoreResult{
			{Store: "sqlite", Class: CallRecords, Found: 3, Done: 3, Action: ActionDeleted},
			{Store: "archive", Class: ComplianceMedia, Found: 2, Done: 0, Action: KeptLegalHold("hold-7")},
		}, PartlyComplied, ""},
		{"kept on a legal basis", []StoreResult{
			{Store: "consortium", Class: ConsortiumEntries, Found: 1, Done: 0, Action: KeptLegalBasis("Article 17(3)(e) legal claims")},
		}, PartlyComplied, ""},
		{"no stores", nil, "", call.Invalid},
		{"unknown class", []StoreResult{{Store: "x", Class: "photos", Action: ActionDeleted}}, "", call.Invalid},
		{"done above found", []StoreResult{{Store: "x", Class: Lists, Found: 1, Done: 2, Action: ActionDeleted}}, "", call.Invalid},
		{"negative found", []StoreResult{{Store: "x", Class: Lists, Found: -1, Action: ActionDeleted}}, "", call.Invalid},
		{"kept without a reason", []StoreResult{{Store: "x", Class: Lists, Found: 1, Action: KeptLegalHold(" ")}}, "", call.Invalid},
		{"no action", []StoreResult{{Store: "x", Class: Lists, Found: 1}}, "", call.Invalid},
		{"no store name", []StoreResult{{Class: Lists, Action: ActionNone}}, "", call.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustCase(t, Erasure, t0)
			if err := c.ConfirmIdentity(t0); err != nil {
				t.Fatal(err)
			}
			err := c.Complete(done, Receipt{CaseID: "spoofed", Stores: tt.stores})
			if call.ErrorCode(err) != tt.code {
				t.Fatalf("err = %v, want code %q", err, tt.code)
			}
			if tt.code != "" {
				if c.Status != InProgress || c.Receipt != nil {
					t.Errorf("failed completion changed the case")
				}
				return
			}
			if c.Status != Completed || c.Outcome != tt.outcome {
				t.Errorf("status %s outcome %s, want completed %s", c.Status, c.Outcome, tt.outcome)
			}
			r := c.Receipt
			if r == nil || r.CaseID != c.ID || r.Type != Erasure || !r.CompletedAt.Equal(done) || len(r.Stores) != len(tt.stores) {
				t.Fatalf("receipt = %+v", r)
			}
		})
	}
}

func TestFailIdentity(t *testing.T) {
	t0 := day(2026, time.September, 3)
	c := mustCase(t, Access, t0)
	if err := c.RequestIdentity(t0); err != nil {
		t.Fatal(err)
	}
	if err := c.FailIdentity(t0.Add(time.Hour), "no reply to the identity request"); err != nil {
		t.Fatal(err)
	}
	if c.Status != Refused || c.Identity != IdentityFailed || c.Outcome != IdentityNotProven {
		t.Errorf("case = %s/%s/%s", c.Status, c.Identity, c.Outcome)
	}
	if d := c.Deadline(t0); d.Started {
		t.Errorf("deadline started without identity: %+v", d)
	}
}

// TestNoNumberInCaseJSON checks the case, its events and receipt serialise
// without the subject's number or user reference, and that a Subject does
// not print or log them.
func TestNoNumberInCaseJSON(t *testing.T) {
	t0 := day(2026, time.September, 3)
	c := mustCase(t, Portability, t0)
	steps := []func() error{
		func() error { return c.ConfirmIdentity(t0) },
		func() error { return c.Pause(t0, "which period?") },
		func() error { return c.Resume(t0.Add(24 * time.Hour)) },
		func() error { return c.Extend(t0.Add(25*time.Hour), t0.Add(25*time.Hour), 2, "many stores") },
		func() error {
			return c.Complete(t0.Add(72*time.Hour), Receipt{Stores: []StoreResult{{Store: "sqlite", Class: CallRecords, Found: 4, Done: 4, Action: ActionExported}}})
		},
	}
	for i, s := range steps {
		if err := s(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{testNumber, testNumber[1:], "1632960471", "cust-88"} {
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("case JSON contains %q: %s", secret, b)
		}
	}
	if !bytes.Contains(b, []byte(`"identifiers":["number","user_ref"]`)) {
		t.Errorf("case JSON lacks identifier kinds: %s", b)
	}
	var back Case
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(100 * time.Hour)
	if back.Deadline(now) != c.Deadline(now) {
		t.Errorf("deadline after a JSON round trip = %+v, want %+v", back.Deadline(now), c.Deadline(now))
	}

	s := Subject{Number: testNumber, UserRef: "cust-88"}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("case", "subject", s)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%+v %#v", s, s), logged.String()} {
		if strings.Contains(out, "1632960471") || strings.Contains(out, "cust-88") {
			t.Errorf("subject leaked: %s", out)
		}
	}
}
