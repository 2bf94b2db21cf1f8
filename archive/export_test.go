package archive

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type exportFixture struct {
	ten   Tenant
	blobs *DirBlobs
	items []ExportItem
	plain map[string][]byte
}

func newExportFixture(t *testing.T) *exportFixture {
	t.Helper()
	fx := &exportFixture{ten: newTenant(t, "tenant-a"), plain: map[string][]byte{}}
	var err error
	if fx.blobs, err = OpenDirBlobs(filepath.Join(t.TempDir(), "blobs")); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	for i, it := range []struct {
		id, kind, file string
		size           int
	}{
		{"rec-1", "recording", "rec-1.wav", 3*DefaultChunkSize + 17},
		{"sms-1", "sms", "sms-1.txt", 120},
		{"rec-2", "recording", "", 0},
	} {
		plain := randomBytes(uint64(100+i), it.size)
		fx.plain[it.id] = plain
		w, err := fx.blobs.Create(it.id)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(sealBytes(t, fx.ten, it.id, 0, plain))
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		id := it.id
		fx.items = append(fx.items, ExportItem{ID: id, Kind: it.kind, File: it.file, Time: at.Add(time.Duration(i) * time.Minute),
			Open: func() (io.ReadCloser, error) { return OpenMedia(fx.blobs, fx.ten, id) }})
	}
	return fx
}

func TestExport(t *testing.T) {
	fx := newExportFixture(t)
	created := time.Date(2025, 4, 1, 9, 30, 0, 0, time.UTC)
	m, sum, err := SealExport(fx.blobs, fx.ten, "export-case-7", Export{CaseID: "case-7", Created: created, Items: fx.items})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Items) != 3 || m.CaseID != "case-7" || !m.Created.Equal(created) {
		t.Fatalf("manifest %+v", m)
	}
	for _, it := range m.Items {
		want := sha256.Sum256(fx.plain[it.ID])
		if it.SHA256 != hex.EncodeToString(want[:]) || it.Size != int64(len(fx.plain[it.ID])) {
			t.Errorf("item %s: manifest size %d sha %s", it.ID, it.Size, it.SHA256)
		}
	}
	if m.Items[2].File != "rec-2" {
		t.Errorf("default file name %q", m.Items[2].File)
	}

	// The stored export is sealed; verify it through playback.
	media, err := OpenMedia(fx.blobs, fx.ten, "export-case-7")
	if err != nil {
		t.Fatal(err)
	}
	defer media.Close()
	vm, vsum, err := VerifyExport(media, media.Size())
	if err != nil {
		t.Fatal(err)
	}
	if vsum != sum || vm.CaseID != "case-7" || len(vm.Items) != 3 || vm.Items[0] != m.Items[0] {
		t.Fatalf("verified manifest differs: %+v", vm)
	}
	zipBytes, err := io.ReadAll(io.NewSectionReader(media, 0, media.Size()))
	if err != nil {
		t.Fatal(err)
	}

	manifestOf := func(t *testing.T, files map[string][]byte) string { return string(files[manifestName]) }
	resum := func(files map[string][]byte) {
		s := sha256.Sum256(files[manifestName])
		files[manifestSumName] = []byte(hex.EncodeToString(s[:]) + "  manifest.json\n")
	}
	tests := []struct {
		name   string
		edit   func(t *testing.T, files map[string][]byte)
		raw    func(b []byte) []byte
		wantIn string
	}{
		{name: "edit a file", edit: func(t *testing.T, f map[string][]byte) { f["items/rec-1.wav"][100] ^= 1 }, wantIn: `item "rec-1"`},
		{name: "truncate a file", edit: func(t *testing.T, f map[string][]byte) { f["items/sms-1.txt"] = f["items/sms-1.txt"][:50] }, wantIn: `item "sms-1"`},
		{name: "remove a file", edit: func(t *testing.T, f map[string][]byte) { delete(f, "items/sms-1.txt") }, wantIn: `item "sms-1": file "sms-1.txt" is missing`},
		{name: "add a file", edit: func(t *testing.T, f map[string][]byte) { f["items/extra.wav"] = []byte("x") }, wantIn: `"items/extra.wav" is not in the manifest`},
		{name: "edit the manifest", edit: func(t *testing.T, f map[string][]byte) {
			f[manifestName] = []byte(strings.Replace(manifestOf(t, f), "case-7", "case-8", 1))
		}, wantIn: "does not match"},
		{name: "edit the manifest and its sum", edit: func(t *testing.T, f map[string][]byte) {
			f[manifestName] = []byte(strings.Replace(manifestOf(t, f), m.Items[1].SHA256, strings.Repeat("0", 64), 1))
			resum(f)
		}, wantIn: `item "sms-1"`},
		{name: "drop the manifest", edit: func(t *testing.T, f map[string][]byte) { delete(f, manifestName) }, wantIn: "manifest.json: missing"},
		{name: "flip a byte of the zip", raw: func(b []byte) []byte { b[200] ^= 1; return b }, wantIn: `item "rec-1"`},
		{name: "cut the zip", raw: func(b []byte) []byte { return b[:len(b)/2] }, wantIn: "not a readable zip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := bytes.Clone(zipBytes)
			if tt.raw != nil {
				b = tt.raw(b)
			} else {
				files := unzip(t, b)
				tt.edit(t, files)
				b = rezip(t, files)
			}
			_, _, err := VerifyExport(bytes.NewReader(b), int64(len(b)))
			if !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), tt.wantIn) {
				t.Fatalf("err = %v, want ErrTampered mentioning %s", err, tt.wantIn)
			}
		})
	}
	t.Run("unchanged rezip verifies", func(t *testing.T) {
		b := rezip(t, unzip(t, zipBytes))
		if _, s, err := VerifyExport(bytes.NewReader(b), int64(len(b))); err != nil || s != sum {
			t.Fatalf("err %v", err)
		}
	})
}

func TestExportInvalid(t *testing.T) {
	fx := newExportFixture(t)
	dup := append([]ExportItem(nil), fx.items...)
	dup[1].File = "rec-1.wav"
	noOpen := append([]ExportItem(nil), fx.items...)
	noOpen[0].Open = nil
	badName := append([]ExportItem(nil), fx.items...)
	badName[0].File = "../x"
	for name, items := range map[string][]ExportItem{"duplicate file": dup, "no content": noOpen, "bad file name": badName} {
		t.Run(name, func(t *testing.T) {
			_, _, err := SealExport(fx.blobs, fx.ten, "export-1", Export{CaseID: "c", Items: items})
			if err == nil {
				t.Fatal("export accepted")
			}
			if _, err := fx.blobs.Open("export-1"); err == nil {
				t.Fatal("failed export stored")
			}
		})
	}
}

func unzip(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name], err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

func rezip(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
