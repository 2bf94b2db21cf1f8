package archive

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"testing"
	"time"
)

// fuzzExport returns an export zip of items with the given contents,
// written by WriteExport.
func fuzzExport(tb testing.TB, contents ...string) []byte {
	tb.Helper()
	at := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	var items []ExportItem
	for i, c := range contents {
		items = append(items, ExportItem{
			ID: "rec-" + string(rune('a'+i)), Kind: "recording", Time: at.Add(time.Duration(i) * time.Minute),
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader([]byte(c))), nil },
		})
	}
	var buf bytes.Buffer
	if _, _, err := WriteExport(&buf, Export{CaseID: "case-7", Created: at, Items: items}); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzVerifyExport feeds arbitrary zips to VerifyExport (`ringfence
// archive verify-export FILE.zip`, a file that may have travelled).
// Checks: no panic; a refusal wraps ErrTampered and returns no manifest;
// an accepted export has the export format, exactly the files its manifest
// lists (plus the manifest and its sum), and the returned sum is the
// SHA-256 of its manifest.json. Seeds: exports WriteExport makes, a zip of
// other files, and testdata/fuzz/FuzzVerifyExport.
func FuzzVerifyExport(f *testing.F) {
	f.Add(fuzzExport(f))
	f.Add(fuzzExport(f, "RIFF....WAVEfmt "))
	f.Add(fuzzExport(f, "sms: call me back", "", "third"))
	var other bytes.Buffer
	zw := zip.NewWriter(&other)
	w, _ := zw.Create("manifest.json")
	w.Write([]byte(`{"format":"ringfence-export/1","items":[]}`))
	zw.Close()
	f.Add(other.Bytes())
	f.Add([]byte("PK\x05\x06" + string(make([]byte, 18))))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, sum, err := VerifyExport(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if !errors.Is(err, ErrTampered) || m.Format != "" || m.Items != nil || sum != [32]byte{} {
				t.Fatalf("refusal %v (manifest %+v): want ErrTampered and no manifest", err, m)
			}
			return
		}
		if m.Format != ExportFormat {
			t.Fatalf("accepted format %q", m.Format)
		}
		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatalf("accepted a zip archive/zip cannot read: %v", err)
		}
		if len(zr.File) != len(m.Items)+2 {
			t.Fatalf("accepted %d files for %d items", len(zr.File), len(m.Items))
		}
		for _, f := range zr.File {
			if f.Name != manifestName {
				continue
			}
			body, err := readZipFile(f, 1<<24)
			if err != nil || sha256.Sum256(body) != sum {
				t.Fatalf("returned sum is not manifest.json's (%v)", err)
			}
		}
	})
}
