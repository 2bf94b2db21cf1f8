package privacy

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/records-of-processing.md from privacy.Classes")

// recordsDoc is the generated page, relative to this package.
const recordsDoc = "../docs/records-of-processing.md"

func TestRecords(t *testing.T) {
	rs := Records()
	cs := Classes()
	if len(rs) != len(cs) {
		t.Fatalf("%d records for %d classes", len(rs), len(cs))
	}
	for i, r := range rs {
		t.Run(string(r.Class), func(t *testing.T) {
			c := cs[i]
			if r.Class != c.Class || r.Purpose != c.Purpose || r.LegalBasis != c.LegalBasis || r.Owner != c.Owner {
				t.Errorf("record does not match its class: %+v", r)
			}
			if !strings.HasPrefix(r.Retention, c.Default.String()+" from ") {
				t.Errorf("retention %q does not start with the default %s", r.Retention, c.Default)
			}
			if c.Configurable() == (r.Configurable == "no (fixed)") {
				t.Errorf("configurable %q for class with bounds [%s, %s]", r.Configurable, c.Min, c.Max)
			}
		})
	}
	b, err := json.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	var back []map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"class", "purpose", "legal_basis", "data_subjects", "personal_data", "recipients", "international_transfers", "retention", "security_measures"} {
		if _, ok := back[0][k]; !ok {
			t.Errorf("JSON record lacks %q", k)
		}
	}
}

// TestRecordsDoc checks docs/records-of-processing.md is what the table
// generates; run with -update to rewrite it.
func TestRecordsDoc(t *testing.T) {
	want := RecordsMarkdown()
	if *update {
		if err := os.WriteFile(recordsDoc, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(recordsDoc)
	if err != nil {
		t.Fatalf("%v (generate it with: go test ./privacy -run TestRecordsDoc -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date with privacy.Classes; regenerate with: go test ./privacy -run TestRecordsDoc -update\n%s",
			recordsDoc, firstDiff(got, want))
	}
	for _, c := range Classes() {
		for _, s := range []string{"`" + string(c.Class) + "`", c.Purpose} {
			if !bytes.Contains(want, []byte(s)) {
				t.Errorf("%s: %q missing from the doc", c.Class, s)
			}
		}
	}
}

// firstDiff describes the first line where got and want differ.
func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n file: %q\n want: %q", i+1, gl, wl)
		}
	}
	return ""
}
