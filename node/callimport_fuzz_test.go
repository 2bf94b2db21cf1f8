package node

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/store/sqlite"
)

// Fuzz targets for the call-history import (CSV and NDJSON), the file
// boundary behind POST /v1/calls/import and `ringfence import-calls`. Each
// input runs through the whole ImportCalls on a real SQLite file, twice:
// the node, its store and its velocity windows live as long as the fuzzing
// process, so inputs also meet records earlier inputs stored (in the same
// tenant, see fuzzTenants). Corpora:
// the seeds below and testdata/fuzz/FuzzImportCalls{CSV,NDJSON}.

// fuzzImportNode opens a node over a real SQLite file under f's temporary
// directory, on importNow's clock, with no change feed follower (nothing
// else writes to the file).
func fuzzImportNode(f *testing.F) *fuzzTenants {
	f.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(f.TempDir(), "rf.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	mk, err := seal.NewMasterKey()
	if err != nil {
		f.Fatal(err)
	}
	n, err := Open(ctx, Config{Now: func() time.Time { return importNow }, Follow: FollowConfig{Poll: -1}}, st, seal.NewKeyring(mk))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { n.Close() })
	return &fuzzTenants{n: n}
}

// fuzzTenants hands out the tenant (GB) each input is imported into: a new
// one every 256 inputs. An import looks through the tenant's records of
// the hour around each row for ones imported before, and the inputs all
// start near t0: with one tenant for the whole run, each import read more
// of them and the rate fell (121 inputs/s over a minute, 43 over five).
type fuzzTenants struct {
	n           *Node
	inputs, seq int
}

func (ft *fuzzTenants) next(t *testing.T) string {
	if ft.inputs%256 == 0 {
		ft.seq++
		if _, _, err := ft.n.CreateTenant(context.Background(), fmt.Sprintf("bank-%d", ft.seq), "", "GB"); err != nil {
			t.Fatal(err)
		}
	}
	ft.inputs++
	return fmt.Sprintf("bank-%d", ft.seq)
}

// fuzzHistoryNDJSON is an NDJSON history with good rows and one of each
// kind of bad line, as TestImportCallsNDJSON has them.
var fuzzHistoryNDJSON = strings.Join([]string{
	`{"call_ref":"n1","started_at":"` + at(0) + `","caller":"+447400300003","dialled":"+442079460003","label":"genuine","signalling":{"pai":"<sip:+447400300003@carrier>","verstat":"TN-Validation-Passed-A"}}`,
	``,
	`{"started_at":"` + at(time.Second) + `","caller":"anonymous","dialled":"+442079460003","duration_s":3.5,"result":"answered","signalling":{"pai":["<sip:a@x>","<sip:b@x>"],"identity":"eyJhbGciOiJFUzI1NiJ9.e30.c2ln;info=<https://cert.example/c.pem>"}}`,
	`{"call_ref":"n3","started_at":"` + at(2*time.Second) + `","caller":"+447400300003","dialled":"+442079460003","bogus":1}`,
	`{"call_ref":"n4",`,
	`{"call_ref":"n5","started_at":"` + at(3*time.Second) + `","caller":447400300003,"dialled":"+442079460003"}`,
	`[1,2]`,
	`{"call_ref":"n7","started_at":"` + at(4*time.Second) + `","caller":"+447400300003","dialled":"02079460003","signalling":{"pai":7}}`,
	`{"call_ref":"n8","started_at":"` + at(5*time.Second) + `","caller":"+447400300003","dialled":"+442079460003","label":"fraud","fraud_type":"wangiri"} {}`,
	`{"call_ref":"n9","started_at":"` + at(6*time.Second) + `","caller":"07400 300003","dialled":"+442079460003","label":"Fraud","fraud_type":"wangiri","duration_s":1e400,"result":"busy","egress_route":"out-1","user_ref":"cust-9","ingress_route":"uk-1","appliance_id":"sbc.1"}`,
	"\r",
	`{"call_ref":"n9","started_at":"` + at(6*time.Second) + `","caller":"+447400300003","dialled":"+442079460003","signalling":{"from":"\"A\" <sip:+447400300003@x>;tag=1","privacy":"id","diversion":"<tel:+442071000001>","user_agent":"SBC"}}`,
}, "\n")

// maxFuzzFile bounds the files the import targets try: the fuzzer's
// mutations can grow an input to a megabyte, tens of thousands of rows,
// each screened and stored, which stalls a worker for seconds while
// finding nothing a few hundred rows would not.
const maxFuzzFile = 8 << 10

func fuzzImportSeeds(f *testing.F, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
}

func FuzzImportCallsCSV(f *testing.F) {
	fuzzImportSeeds(f, historyCSV,
		"started_at,caller,dialled\n"+at(0)+",+447400100001,+442079460001\n",
		"\ufeffStarted_At , CALLER,dialled,duration_s,result\r\n"+at(0)+",anonymous,02079460001,0x1p4,answered\r\n",
		"caller,dialled\n+447400100001,+442079460001\n",
		"started_at,caller,dialled,caller\n",
		"4692576503,2566445079\n",
		"started_at,caller,dialled,pai,identity\n"+at(0)+`,+447400100001,+442079460001,"<sip:+447400100001@a>, <tel:+447400100001>","a.b.c;info=<https://x/,y>"`+"\n",
		"",
	)
	tenants := fuzzImportNode(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		b = b[:min(len(b), maxFuzzFile)]
		checkCallImport(t, tenants.n, tenants.next(t), b, CallsCSV, csvRows(b))
	})
}

func FuzzImportCallsNDJSON(f *testing.F) {
	fuzzImportSeeds(f, fuzzHistoryNDJSON,
		`{"started_at":"`+at(0)+`","caller":"+447400100001","dialled":"+442079460001"}`,
		`{"started_at":"`+at(0)+`","caller":"+447400100001","dialled":"+442079460001","signalling":{"pai":["a","b","c","d","e","f","g","h","i"]}}`,
		"{}\n\n \t\n{\"call_ref\":null}\n",
		"\"x\"\nnull\n",
	)
	tenants := fuzzImportNode(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		b = b[:min(len(b), maxFuzzFile)]
		checkCallImport(t, tenants.n, tenants.next(t), b, CallsNDJSON, ndjsonRows(b))
	})
}

// checkCallImport imports b twice and checks what an import of any file
// promises: a header or format problem is Invalid and nothing else fails;
// every row is imported, found imported before or rejected, exactly once;
// rejections are listed by line, in order, and do not repeat the file's
// numbers; and a second import of the same file rejects the same rows and
// takes the rest (imported again or found imported).
func checkCallImport(t *testing.T, n *Node, tenant string, b []byte, format CallFormat, rows int) {
	ctx := context.Background()
	first, err := n.ImportCalls(ctx, tenant, bytes.NewReader(b), format)
	if err != nil {
		if call.ErrorCode(err) != call.Invalid {
			t.Fatalf("import failed with %v (code %q); only Invalid is a file's fault", err, call.ErrorCode(err))
		}
		checkNoEcho(t, b, err.Error())
		return
	}
	if got := first.Imported + first.AlreadyImported + first.RejectedCount; got != rows {
		t.Fatalf("%d rows imported, %d found imported, %d rejected; the file has %d rows", first.Imported, first.AlreadyImported, first.RejectedCount, rows)
	}
	checkRejections(t, b, first.Rejected, first.RejectedCount)
	again, err := n.ImportCalls(ctx, tenant, bytes.NewReader(b), format)
	if err != nil {
		t.Fatalf("second import: %v", err)
	}
	if again.RejectedCount != first.RejectedCount || again.Imported+again.AlreadyImported != first.Imported+first.AlreadyImported {
		t.Fatalf("second import = %+v, first %+v", again, first)
	}
	for i := range again.Rejected {
		if again.Rejected[i] != first.Rejected[i] {
			t.Fatalf("second import rejects %+v, first %+v", again.Rejected[i], first.Rejected[i])
		}
	}
}

// checkRejections checks a list of rejected rows: as long as the count
// allows up to maxRejected, lines in file order, none repeating a number.
func checkRejections(t *testing.T, b []byte, rejected []RowError, count int) {
	t.Helper()
	if len(rejected) != min(count, maxRejected) {
		t.Fatalf("%d rejections listed of %d", len(rejected), count)
	}
	lines := bytes.Count(b, []byte("\n")) + 1
	for i, r := range rejected {
		if r.Line < 1 || r.Line > lines || i > 0 && r.Line < rejected[i-1].Line {
			t.Fatalf("rejection %d at line %d (after line %d; the file has %d lines)", i, r.Line, rejected[max(0, i-1)].Line, lines)
		}
		if r.Message == "" {
			t.Fatalf("line %d rejected without a reason", r.Line)
		}
		checkNoEcho(t, b, r.Message)
	}
}

// checkNoEcho fails if msg holds a run of seven or more digits that is
// also in the input: a message about a row must not repeat a telephone
// number from it (the message goes back to whoever uploaded the file, and
// into their tools' logs).
func checkNoEcho(t *testing.T, input []byte, msg string) {
	t.Helper()
	for i := 0; i < len(msg); {
		j := i
		for j < len(msg) && '0' <= msg[j] && msg[j] <= '9' {
			j++
		}
		if j-i >= 7 && bytes.Contains(input, []byte(msg[i:j])) {
			t.Fatalf("message %q repeats %q from the file", msg, msg[i:j])
		}
		i = max(j, i+1)
	}
}

// csvRows counts the records after the header of a CSV file as the
// importers read them (a malformed record counts as one).
func csvRows(b []byte) int {
	cr := csv.NewReader(bytes.NewReader(b))
	cr.FieldsPerRecord = -1
	rows := -1 // the header
	for {
		_, err := cr.Read()
		var perr *csv.ParseError
		if errors.Is(err, io.EOF) || err != nil && !errors.As(err, &perr) {
			return max(rows, 0)
		}
		rows++
	}
}

// ndjsonRows counts the lines of an NDJSON file that are not blank, or
// too long to read (readLine allows the last line, without its newline,
// one byte more).
func ndjsonRows(b []byte) int {
	rows := 0
	lines := bytes.Split(b, []byte("\n"))
	for i, line := range lines {
		last := i == len(lines)-1
		if len(bytes.TrimSpace(line)) > 0 || !last && len(line) > maxNDJSONLine || last && len(line) > maxNDJSONLine+1 {
			rows++
		}
	}
	return rows
}
