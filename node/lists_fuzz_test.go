package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/call"
)

// ftcFeed is the FTC's Do Not Call complaint feed (see
// ../shared/testdata/README.md): a header, then numbers as consumers typed
// them, most 10-digit NANP, some of impossible lengths; CRLF line ends.
const ftcFeed = "../../shared/testdata/numbers/ftc_dnc_reported_numbers_90days_2025-12-11.csv"

// fuzzListRegions are the regions a list import is fuzzed with; "uk" and
// "XX" are refused (not an upper-case ISO code) or unknown.
var fuzzListRegions = []string{"", "US", "GB", "JE", "DE", "uk", "XX"}

// FuzzImportList feeds arbitrary CSV to the list import (POST
// /v1/lists/{list}/import, `ringfence import`) on a real SQLite file. It
// checks that only a bad region fails the import, that every row is added
// or rejected exactly once (a first row without digits being a header),
// and that rejections are listed by line without repeating a number.
// Seeds: the first 300 lines of the FTC feed when ../shared is there, and
// testdata/fuzz/FuzzImportList (slices of the FTC feed and libphonenumber's
// example numbers).
func FuzzImportList(f *testing.F) {
	if head := readLines(ftcFeed, 300); head != "" {
		f.Add([]byte(head), uint8(3)) // US, allow list
	}
	for i, s := range []string{
		"number,reason,expires_at\n+447400123456,fraud ring,2027-01-01\n07400 123457,,2027-01-01T00:00:00Z\n+44 7400 123458\n",
		"+447400123456;x\n\"+447400123456\",\"a \"\"quoted\"\" reason\"\n",
		"pattern\r\n4692576503\r\n812\r\n4409063055440906271\r\n",
		"number\n+447400123456,reason,yesterday\n+447400123456,reason,2020-02-30\n\n,\n",
		"x\"y\n+447400123456\n",
		"tel:+1-201-555-0123\n00 1 201 555 0123\n011 44 121 234 5678\n",
	} {
		f.Add([]byte(s), uint8(i))
	}
	tenants := fuzzImportNode(f)
	lists := []call.ListKind{call.AllowList, call.DenyList, call.DNOList}
	f.Fuzz(func(t *testing.T, b []byte, choice uint8) {
		b = b[:min(len(b), maxFuzzFile)]
		list := lists[int(choice)%len(lists)]
		region := fuzzListRegions[int(choice)/len(lists)%len(fuzzListRegions)]
		res, err := tenants.n.ImportList(context.Background(), tenants.next(t), list, bytes.NewReader(b), region)
		if region != "" && !call.ValidRegion(region) {
			if call.ErrorCode(err) != call.Invalid {
				t.Fatalf("region %q: %v, want Invalid", region, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("import failed with %v (code %q); a bad row is rejected, not fatal", err, call.ErrorCode(err))
		}
		if got, want := res.Added+res.RejectedCount, listRows(b); got != want {
			t.Fatalf("%d rows added, %d rejected; the file has %d rows", res.Added, res.RejectedCount, want)
		}
		checkRejections(t, b, res.Rejected, res.RejectedCount)
	})
}

// listRows counts the rows of a list CSV as ImportList reads them: every
// record, malformed ones included, except a first row whose first field
// holds no digit (a header).
func listRows(b []byte) int {
	cr := csv.NewReader(bytes.NewReader(b))
	cr.FieldsPerRecord = -1
	rows := 0
	for i := 0; ; i++ {
		rec, err := cr.Read()
		var perr *csv.ParseError
		switch {
		case errors.Is(err, io.EOF):
			return rows
		case errors.As(err, &perr):
			rows++
		case err != nil:
			return rows
		case i == 0 && !strings.ContainsAny(strings.TrimSpace(rec[0]), "0123456789"):
		default:
			rows++
		}
	}
}

// readLines returns the first n lines of the file at path with their line
// ends, or "" if it cannot be read.
func readLines(path string, n int) string {
	fh, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer fh.Close()
	var b strings.Builder
	br := bufio.NewReader(fh)
	for range n {
		line, err := br.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			break
		}
	}
	return b.String()
}
