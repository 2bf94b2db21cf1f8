package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringfence/ringfence/audit"
	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/sqlite"
)

// importNow is the fixed clock of the import tests; the history is a month
// before it.
var importNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// auditSpy is an Auditor that keeps the events it is given.
type auditSpy struct {
	mu     sync.Mutex
	events []audit.Event
}

func (a *auditSpy) Record(_ context.Context, e audit.Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, e)
	return nil
}

func (a *auditSpy) imports() []audit.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []audit.Event
	for _, e := range a.events {
		if e.Action == "call.import" {
			out = append(out, e)
		}
	}
	return out
}

// failingInserts is the real store, except that one InsertCalls fails.
type failingInserts struct {
	store.Store
	mu     sync.Mutex
	n, bad int
}

func (f *failingInserts) InsertCalls(ctx context.Context, calls []store.Call) error {
	f.mu.Lock()
	f.n++
	fail := f.n == f.bad
	f.mu.Unlock()
	if fail {
		return errors.New("disk full")
	}
	return f.Store.InsertCalls(ctx, calls)
}

// importNode opens a node with the fixed clock over a real SQLite file,
// with tenant "bank" (GB). wrap, if set, wraps the store.
func importNode(t *testing.T, wrap func(store.Store) store.Store) (*Node, *auditSpy, store.Store) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rf.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var s store.Store = st
	if wrap != nil {
		s = wrap(st)
	}
	mk, _ := seal.NewMasterKey()
	spy := &auditSpy{}
	n, err := Open(t.Context(), Config{Now: func() time.Time { return importNow }, Audit: spy}, s, seal.NewKeyring(mk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if _, _, err := n.CreateTenant(t.Context(), "bank", "", "GB"); err != nil {
		t.Fatal(err)
	}
	return n, spy, st
}

// t0 is the start of the imported history.
var t0 = time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC)

func at(d time.Duration) string { return t0.Add(d).Format(time.RFC3339) }

// historyCSV has good rows and one of each kind of bad row. Caller A
// (...100001) calls four times within 15 s, so its fourth call trips
// velocity.caller_minute; caller B (...200002) calls four times 20 minutes
// apart, which trips nothing.
var historyCSV = strings.Join([]string{
	"call_ref,started_at,caller,dialled,user_ref,ingress_route,duration_s,result,egress_route,label,fraud_type,from,pai,verstat,privacy,user_agent",
	"a1," + at(0) + ",+447400100001,+442079460001,cust-1,uk-1,30,answered,out-1,,,,,,,",                                      // 2
	"a2," + at(5*time.Second) + ",+447400100001,+442079460001,,,,,,,,,,,,",                                                   // 3
	"a3," + at(10*time.Second) + ",+447400100001,+442079460001,,,,,,,,,,,,",                                                  // 4
	"a4," + at(15*time.Second) + ",+447400100001,+442079460001,,,2,answered,,fraud,impersonation,,,,,",                       // 5
	"b1," + at(20*time.Second) + ",+447400200002,+442079460002,,,,busy,,genuine,,,,,,",                                       // 6
	"b1," + at(20*time.Second) + ",+447400200002,+442079460002,,,,,,,,,,,,",                                                  // 7 repeats line 6
	"x1,,+447400300003,+442079460003,,,,,,,,,,,,",                                                                            // 8 no started_at
	"x2,yesterday,+447400300003,+442079460003,,,,,,,,,,,,",                                                                   // 9 not RFC 3339
	"x3," + at(0) + ",+447400300003,+442079460003,,,,,,,,,,,,",                                                               // 10 out of order
	"x4," + at(time.Minute) + ",+447400300003,+442079460003,,,,,,maybe,,,,,,",                                                // 11 bad label
	"x5," + at(time.Minute) + ",+447400300003,not-a-number,,,,,,,,,,,,",                                                      // 12 dialled
	"x6," + at(time.Minute) + ",+447400300003,+442079460003,,,,hungup,,,,,,,,",                                               // 13 result
	"x7," + at(time.Minute) + ",+447400300003,+442079460003,,,,,,genuine,phishing,,,,,",                                      // 14 fraud_type
	"x8," + at(time.Minute) + ",+447400300003",                                                                               // 15 too few fields
	"x9,2024-01-01T00:00:00Z,+447400300003,+442079460003,,,,,,,,,,,,",                                                        // 16 too old
	"x10," + at(time.Minute) + ",+447400300003,+442079460003,,,,answered,,,,,,,,",                                            // 17 answered, no duration
	"x11," + at(time.Minute) + ",,+442079460003,,,,,,,,,,,,",                                                                 // 18 no caller
	"x12," + at(time.Minute) + ",+447400300003,+442079460003,,,abc,busy,,,,,,,,",                                             // 19 duration
	"b2," + at(20*time.Minute) + ",+447400200002,+442079460002,,,,,,,,,,,,",                                                  // 20
	"b3," + at(40*time.Minute) + ",+447400200002,+442079460002,,,,,,,,,,,,",                                                  // 21
	"b4," + at(60*time.Minute) + ",+447400200002,+442079460002,,,,,,,,,<sip:+447400200002@carrier>,TN-Validation-Passed-A,,", // 22
	`x13,` + at(time.Hour) + `,+447400300003,+442079460003,,,,,,,,x"y,,,,`,                                                   // 23 bare quote
}, "\n") + "\n"

var wantCSVRejected = map[int]string{
	7:  "call_ref: repeats line 6",
	8:  "started_at: required",
	9:  "started_at: must be RFC 3339",
	10: "started_at: earlier than line 6's; sort the file",
	11: "label: must be fraud, genuine or empty",
	12: "dialled: not a telephone number",
	13: "result: must be answered",
	14: "fraud_type: only with label fraud",
	15: "has 3 fields; the header has 16",
	16: "started_at: more than 400 days in the past",
	17: "duration_s: required for an answered call",
	18: "caller: required",
	19: "duration_s: must be a number",
	23: "malformed CSV",
}

func checkRejected(t *testing.T, got []RowError, want map[int]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("rejected %d rows, want %d: %+v", len(got), len(want), got)
	}
	for _, r := range got {
		w, ok := want[r.Line]
		if !ok {
			t.Errorf("line %d rejected (%s), want it imported", r.Line, r.Message)
			continue
		}
		if !strings.Contains(r.Message, w) {
			t.Errorf("line %d: message %q, want it to contain %q", r.Line, r.Message, w)
		}
		if strings.Contains(r.Message, "7400") {
			t.Errorf("line %d: message %q holds a phone number", r.Line, r.Message)
		}
	}
}

// byRef lists the tenant's records keyed by call_ref.
func byRef(t *testing.T, n *Node, f store.CallFilter) map[string]*call.Call {
	t.Helper()
	f.Limit = 1000
	cs, _, err := n.Calls(t.Context(), "bank", f)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*call.Call{}
	for _, c := range cs {
		out[c.Ref] = c
	}
	return out
}

func TestImportCallsCSV(t *testing.T) {
	n, spy, st := importNode(t, nil)
	ctx := t.Context()
	res, err := n.ImportCalls(ctx, "bank", strings.NewReader(historyCSV), CallsCSV)
	if err != nil {
		t.Fatal(err)
	}
	if res.Imported != 8 || res.AlreadyImported != 0 || res.RejectedCount != len(wantCSVRejected) {
		t.Errorf("result = %d imported, %d already, %d rejected; want 8, 0, %d", res.Imported, res.AlreadyImported, res.RejectedCount, len(wantCSVRejected))
	}
	checkRejected(t, res.Rejected, wantCSVRejected)

	calls := byRef(t, n, store.CallFilter{})
	if len(calls) != 8 {
		t.Fatalf("%d records, want 8", len(calls))
	}
	t.Run("verdicts at the historical time", func(t *testing.T) {
		for ref, want := range map[string]bool{"a1": false, "a3": false, "a4": true, "b1": false, "b4": false} {
			if got := calls[ref].Verdict.Has("velocity.caller_minute"); got != want {
				t.Errorf("%s: velocity.caller_minute = %v, want %v (markers %+v)", ref, got, want, calls[ref].Verdict.Markers)
			}
		}
		if !calls["b4"].Verdict.Has("verstat.passed_a") {
			t.Errorf("b4: markers %+v, want verstat.passed_a from the signalling columns", calls["b4"].Verdict.Markers)
		}
		if got := calls["a2"].StartedAt; !got.Equal(t0.Add(5 * time.Second)) {
			t.Errorf("a2 started_at = %v", got)
		}
	})
	t.Run("labels", func(t *testing.T) {
		fraud := byRef(t, n, store.CallFilter{Review: call.Fraud})
		genuine := byRef(t, n, store.CallFilter{Review: call.Genuine})
		if len(fraud) != 1 || fraud["a4"] == nil || fraud["a4"].Review.FraudType != "impersonation" {
			t.Errorf("fraud records = %v, want a4 (impersonation)", fraud)
		}
		if len(genuine) != 1 || genuine["b1"] == nil {
			t.Errorf("genuine records = %v, want b1", genuine)
		}
		if s := calls["a1"].Review.Status; s != call.Unreviewed {
			t.Errorf("a1 review = %q, want unreviewed", s)
		}
		// Import does not act on lists: a fraud label would deny-list the caller.
		if _, listed := n.engine.Listed("bank", call.DenyList, calls["a4"].Caller); listed {
			t.Error("a4's caller was deny-listed by the import")
		}
	})
	t.Run("call ends and fields", func(t *testing.T) {
		a1 := calls["a1"]
		if a1.End == nil || a1.End.Duration != 30*time.Second || a1.End.Result != call.Answered || a1.End.Egress != "out-1" {
			t.Errorf("a1 end = %+v", a1.End)
		}
		if b1 := calls["b1"]; b1.End == nil || b1.End.Result != call.Busy || b1.End.Duration != 0 {
			t.Errorf("b1 end = %+v", b1.End)
		}
		if calls["a2"].End != nil {
			t.Errorf("a2 end = %+v, want none", calls["a2"].End)
		}
		if a1.UserRef != "cust-1" || a1.Ingress != "uk-1" || a1.ApplianceID != "import" || a1.Caller.E164 != "+447400100001" {
			t.Errorf("a1 = %+v", a1)
		}
		if a1.ID != historyID("bank", "a1", t0) || !call.ValidRecordID(a1.ID) {
			t.Errorf("a1 id = %s, want %s", a1.ID, historyID("bank", "a1", t0))
		}
	})
	t.Run("re-import stores nothing twice", func(t *testing.T) {
		before, err := st.Counts(ctx, "bank")
		if err != nil {
			t.Fatal(err)
		}
		res, err := n.ImportCalls(ctx, "bank", strings.NewReader(historyCSV), CallsCSV)
		if err != nil {
			t.Fatal(err)
		}
		if res.Imported != 0 || res.AlreadyImported != 8 || res.RejectedCount != len(wantCSVRejected) {
			t.Errorf("re-import = %+v; want 0 imported, 8 already imported", res)
		}
		after, err := st.Counts(ctx, "bank")
		if err != nil {
			t.Fatal(err)
		}
		if after.Calls != before.Calls || after.Calls != 8 {
			t.Errorf("records %d before, %d after the re-import; want 8", before.Calls, after.Calls)
		}
	})
	t.Run("audited once per import", func(t *testing.T) {
		ev := spy.imports()
		if len(ev) != 2 {
			t.Fatalf("%d call.import entries, want 2", len(ev))
		}
		d := ev[0].Detail.(map[string]any)
		if ev[0].Tenant != "bank" || d["imported"] != 8 || d["rejected"] != len(wantCSVRejected) {
			t.Errorf("entry = %+v", ev[0])
		}
		if d := ev[1].Detail.(map[string]any); d["imported"] != 0 || d["already_imported"] != 8 {
			t.Errorf("second entry = %+v", ev[1])
		}
	})
}

func TestImportCallsNDJSON(t *testing.T) {
	n, _, _ := importNode(t, nil)
	lines := []string{
		`{"call_ref":"n1","started_at":"` + at(0) + `","caller":"+447400300003","dialled":"+442079460003","label":"genuine","signalling":{"pai":"<sip:+447400300003@carrier>","verstat":"TN-Validation-Passed-A"}}`,
		``,
		`{"started_at":"` + at(time.Second) + `","caller":"anonymous","dialled":"+442079460003","duration_s":3.5,"result":"answered","signalling":{"pai":["<sip:a@x>","<sip:b@x>"]}}`,
		`{"call_ref":"n3","started_at":"` + at(2*time.Second) + `","caller":"+447400300003","dialled":"+442079460003","bogus":1}`,
		`{"call_ref":"n4",`,
		`{"call_ref":"n5","started_at":"` + at(3*time.Second) + `","caller":447400300003,"dialled":"+442079460003"}`,
		`{"call_ref":"n6","caller":"+447400300003","dialled":"+442079460003"}`,
		`[1,2]`,
		`{"call_ref":"n7","started_at":"` + at(4*time.Second) + `","caller":"+447400300003","dialled":"+442079460003","signalling":{"pai":7}}`,
		`{"call_ref":"n8","started_at":"` + at(5*time.Second) + `","caller":"+447400300003","dialled":"+442079460003","label":"fraud","fraud_type":"wangiri"} {}`,
		`{"call_ref":"n9","started_at":"` + at(6*time.Second) + `","caller":"+447400300003","dialled":"+442079460003","label":"fraud","fraud_type":"wangiri"}`,
	}
	file := strings.Join(lines, "\n") // no final newline
	res, err := n.ImportCalls(t.Context(), "bank", strings.NewReader(file), CallsNDJSON)
	if err != nil {
		t.Fatal(err)
	}
	if res.Imported != 3 {
		t.Errorf("imported %d, want 3", res.Imported)
	}
	checkRejected(t, res.Rejected, map[int]string{
		4:  "bogus: unknown field",
		5:  "malformed JSON",
		6:  "caller: wrong type",
		7:  "started_at: required",
		8:  "must be a JSON object",
		9:  "signalling: pai and identity must be a string or an array",
		10: "exactly one JSON object",
	})
	calls := byRef(t, n, store.CallFilter{})
	n1, anon, n9 := calls["n1"], calls[""], calls["n9"]
	if n1 == nil || anon == nil || n9 == nil {
		t.Fatalf("records = %v", calls)
	}
	if !n1.Verdict.Has("verstat.passed_a") || n1.Review.Status != call.Genuine || n1.End != nil {
		t.Errorf("n1 = %+v", n1)
	}
	if !anon.Verdict.Has("cli.withheld") || !slices.Equal(anon.Signalling.PAI, []string{"<sip:a@x>", "<sip:b@x>"}) ||
		anon.End == nil || anon.End.Duration != 3500*time.Millisecond || !call.ValidRecordID(anon.ID) {
		t.Errorf("withheld row = %+v (end %+v)", anon, anon.End)
	}
	if n9.Review.Status != call.Fraud || n9.Review.FraudType != "wangiri" {
		t.Errorf("n9 review = %+v", n9.Review)
	}
	// A row without call_ref gets a fresh id each time: the one case that
	// a second import duplicates.
	res, err = n.ImportCalls(t.Context(), "bank", strings.NewReader(file), CallsNDJSON)
	if err != nil || res.Imported != 1 || res.AlreadyImported != 2 {
		t.Errorf("re-import = %+v, %v; want the row without call_ref imported again, 2 already imported", res, err)
	}
}

func TestImportCallsRefused(t *testing.T) {
	n, spy, _ := importNode(t, nil)
	row := "\n" + at(0) + ",+447400100001,+442079460001\n"
	for _, tc := range []struct {
		name, tenant, body string
		format             CallFormat
		code, msg          string
	}{
		{"empty file", "bank", "", CallsCSV, call.Invalid, "file: empty"},
		{"no header", "bank", strings.TrimPrefix(row, "\n"), CallsCSV, call.Invalid, "column 1 is not one of"},
		{"missing column", "bank", "started_at,caller" + row, CallsCSV, call.Invalid, "column dialled is required"},
		{"column twice", "bank", "started_at,caller,dialled,caller" + row, CallsCSV, call.Invalid, "column caller appears twice"},
		{"unknown tenant", "nobody", "started_at,caller,dialled" + row, CallsCSV, call.NotFound, ""},
		{"unknown format", "bank", "", "xml", call.Invalid, "format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := n.ImportCalls(t.Context(), tc.tenant, strings.NewReader(tc.body), tc.format)
			if call.ErrorCode(err) != tc.code || !strings.Contains(call.ErrorMessage(err), tc.msg) {
				t.Errorf("err = %v, want %s containing %q", err, tc.code, tc.msg)
			}
			if strings.Contains(call.ErrorMessage(err), "7400") {
				t.Errorf("message %q holds a phone number", call.ErrorMessage(err))
			}
		})
	}
	if ev := spy.imports(); len(ev) != 0 {
		t.Errorf("refused imports audited: %+v", ev)
	}
	// The header alone, with a BOM and in another order, is a valid empty import.
	res, err := n.ImportCalls(t.Context(), "bank", strings.NewReader("\ufeffDialled, caller ,started_at\n"), CallsCSV)
	if err != nil || res.Imported != 0 || res.RejectedCount != 0 {
		t.Errorf("header only = %+v, %v", res, err)
	}
}

// manyCalls is a CSV of k calls from distinct callers, a second apart.
func manyCalls(k int) string {
	var b strings.Builder
	b.WriteString("call_ref,started_at,caller,dialled\n")
	for i := range k {
		fmt.Fprintf(&b, "m%d,%s,+4474001%05d,+442079460123\n", i, at(time.Duration(i)*time.Second), i)
	}
	return b.String()
}

func TestImportCallsBatches(t *testing.T) {
	var fail *failingInserts
	n, spy, st := importNode(t, func(s store.Store) store.Store {
		fail = &failingInserts{Store: s, bad: 2}
		return fail
	})
	ctx := t.Context()
	file := manyCalls(2500)
	res, err := n.ImportCalls(ctx, "bank", strings.NewReader(file), CallsCSV)
	if err == nil || call.ErrorCode(err) != call.Internal {
		t.Fatalf("err = %v, want the failed commit as an internal error", err)
	}
	if res.Imported != 1000 {
		t.Errorf("imported %d before the failed batch, want 1000", res.Imported)
	}
	counts, err := st.Counts(ctx, "bank")
	if err != nil || counts.Calls != 1000 {
		t.Fatalf("stored %d records (%v), want the first batch only", counts.Calls, err)
	}
	if ev := spy.imports(); len(ev) != 1 || ev[0].Detail.(map[string]any)["failed"] != call.Internal {
		t.Errorf("audit = %+v, want one entry marked failed", ev)
	}
	// Retrying the file completes it without duplicating the first batch.
	res, err = n.ImportCalls(ctx, "bank", strings.NewReader(file), CallsCSV)
	if err != nil || res.Imported != 1500 || res.AlreadyImported != 1000 {
		t.Fatalf("retry = %+v, %v; want 1500 imported, 1000 already", res, err)
	}
	if counts, err = st.Counts(ctx, "bank"); err != nil || counts.Calls != 2500 {
		t.Errorf("stored %d records (%v), want 2500", counts.Calls, err)
	}
}

// TestImportCallsStoredLookup checks both ways stored finds earlier
// records: from the ids read for the span, and one by one when the span
// holds more than it reads.
func TestImportCallsStoredLookup(t *testing.T) {
	n, _, _ := importNode(t, nil)
	ctx := t.Context()
	if _, err := n.ImportCalls(ctx, "bank", strings.NewReader(manyCalls(30)), CallsCSV); err != nil {
		t.Fatal(err)
	}
	for _, max := range []int{knownMax, 5} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			imp := &callImport{n: n, tenant: "bank", known: map[string]bool{}, knownMax: max}
			for i := range 30 {
				start := t0.Add(time.Duration(i) * time.Second)
				if ok, err := imp.stored(ctx, historyID("bank", fmt.Sprintf("m%d", i), start), start); err != nil || !ok {
					t.Fatalf("m%d: stored = %v, %v; want true", i, ok, err)
				}
				if ok, err := imp.stored(ctx, historyID("bank", "other", start), start); err != nil || ok {
					t.Fatalf("other at %d s: stored = %v, %v; want false", i, ok, err)
				}
			}
			if imp.complete != (max == knownMax) {
				t.Errorf("complete = %v with knownMax %d", imp.complete, max)
			}
		})
	}
}

// TestImportCallsLinks checks that history teaches customer links as live
// calls do (two allowed calls with one user ref 20 hours apart), except
// from a caller labelled fraud.
func TestImportCallsLinks(t *testing.T) {
	n, _, st := importNode(t, nil)
	file := "call_ref,started_at,caller,dialled,user_ref,label\n" +
		"d1," + at(time.Hour) + ",+447400400004,+442079460004,cust-4,\n" +
		"e1," + at(time.Hour) + ",+447400500005,+442079460005,cust-5,\n" +
		"d2," + at(22*time.Hour) + ",+447400400004,+442079460004,cust-4,genuine\n" +
		"e2," + at(22*time.Hour) + ",+447400500005,+442079460005,cust-5,fraud\n"
	res, err := n.ImportCalls(t.Context(), "bank", strings.NewReader(file), CallsCSV)
	if err != nil || res.Imported != 4 {
		t.Fatalf("import = %+v, %v", res, err)
	}
	links, err := st.Links(t.Context(), "bank", nil, nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := n.tenantKeys("bank")
	d := pseudonym(k, n.engine.Number("bank", "+447400400004"))
	if len(links) != 1 || !slices.Equal(links[0].CallerPseudonym, d) {
		t.Errorf("links = %d, want one, of caller d", len(links))
	}
}
