package archive

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
)

// TestHTTPRanges serves a stored recording through http.ServeContent and
// asks for ranges around chunk boundaries.
func TestHTTPRanges(t *testing.T) {
	const cs = DefaultChunkSize
	ten := newTenant(t, "tenant-a")
	blobs, err := OpenDirBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	plain := randomBytes(5, 3*cs+1000)
	w, _ := blobs.Create("rec-1")
	w.Write(sealBytes(t, ten, "rec-1", cs, plain))
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	modified := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m, err := OpenMedia(blobs, ten, "rec-1")
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		defer m.Close()
		w.Header().Set("Content-Type", "audio/wav")
		http.ServeContent(w, r, "", modified, m)
	}))
	defer srv.Close()

	n := len(plain)
	tests := []struct {
		rng        string
		start, end int // inclusive
	}{
		{"bytes=0-0", 0, 0},
		{fmt.Sprintf("bytes=%d-%d", cs-1, cs), cs - 1, cs},
		{fmt.Sprintf("bytes=%d-%d", cs, 2*cs-1), cs, 2*cs - 1},
		{fmt.Sprintf("bytes=%d-%d", cs-10, 3*cs+10), cs - 10, 3*cs + 10},
		{fmt.Sprintf("bytes=%d-", 3*cs), 3 * cs, n - 1},
		{"bytes=-1", n - 1, n - 1},
		{"bytes=-5000", n - 5000, n - 1},
		{"", 0, n - 1},
	}
	for _, tt := range tests {
		t.Run(tt.rng, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL, nil)
			if tt.rng != "" {
				req.Header.Set("Range", tt.rng)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			wantStatus := http.StatusPartialContent
			if tt.rng == "" {
				wantStatus = http.StatusOK
			}
			if resp.StatusCode != wantStatus || !bytes.Equal(body, plain[tt.start:tt.end+1]) {
				t.Fatalf("status %d, %d bytes, equal %v", resp.StatusCode, len(body), bytes.Equal(body, plain[tt.start:tt.end+1]))
			}
		})
	}
	t.Run("two ranges", func(t *testing.T) {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=10-20,%d-%d", 2*cs-5, 2*cs+5))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if err != nil {
			t.Fatal(err)
		}
		mr := multipart.NewReader(resp.Body, params["boundary"])
		for _, want := range [][]byte{plain[10:21], plain[2*cs-5 : 2*cs+6]} {
			p, err := mr.NextPart()
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(p)
			if !bytes.Equal(got, want) {
				t.Fatalf("part differs")
			}
		}
	})
	t.Run("unsatisfiable", func(t *testing.T) {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", n))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
}

func TestMediaSeek(t *testing.T) {
	ten := newTenant(t, "tenant-a")
	plain := randomBytes(6, 2*MinChunkSize+3)
	sealed := sealBytes(t, ten, "b", MinChunkSize, plain)
	m, err := OpenSealed(bytes.NewReader(sealed), int64(len(sealed)), ten, "b")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		off    int64
		whence int
		want   int64
	}{
		{5, io.SeekStart, 5},
		{10, io.SeekCurrent, 15},
		{-3, io.SeekEnd, int64(len(plain)) - 3},
	}
	for _, tt := range tests {
		got, err := m.Seek(tt.off, tt.whence)
		if err != nil || got != tt.want {
			t.Fatalf("Seek(%d, %d) = %d, %v", tt.off, tt.whence, got, err)
		}
	}
	rest, err := io.ReadAll(m)
	if err != nil || !bytes.Equal(rest, plain[len(plain)-3:]) {
		t.Fatalf("read after seek: %v", err)
	}
	if _, err := m.Seek(-1, io.SeekStart); call.ErrorCode(err) != call.Invalid {
		t.Fatalf("seek before start: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ReadAt(make([]byte, 1), 0); err == nil {
		t.Fatal("read after Close succeeded")
	}
}

func TestDirBlobs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blobs")
	b, err := OpenDirBlobs(dir)
	if err != nil {
		t.Fatal(err)
	}
	w, err := b.Create("x-1")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("hello"))
	if _, err := b.Open("x-1"); call.ErrorCode(err) != call.NotFound {
		t.Fatalf("visible before Commit: %v", err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	blob, err := b.Open("x-1")
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, blob.Size())
	blob.ReadAt(got, 0)
	blob.Close()
	if string(got) != "hello" {
		t.Fatalf("got %q", got)
	}
	w2, _ := b.Create("x-1")
	w2.Write([]byte("other"))
	if err := w2.Commit(); call.ErrorCode(err) != call.Conflict {
		t.Fatalf("second Commit: %v, want conflict", err)
	}
	w3, _ := b.Create("x-2")
	w3.Write([]byte("gone"))
	if err := w3.Abort(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open("x-2"); call.ErrorCode(err) != call.NotFound {
		t.Fatalf("aborted blob visible: %v", err)
	}
	if tmp, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(tmp) != 0 {
		t.Fatalf("%d temporary files left", len(tmp))
	}
	for _, p := range []string{dir, filepath.Dir(b.path("x-1")), b.path("x-1")} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700 | os.ModeDir
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}
	if err := b.Remove("x-1"); err != nil {
		t.Fatal(err)
	}
	if err := b.Remove("x-1"); call.ErrorCode(err) != call.NotFound {
		t.Fatalf("second Remove: %v", err)
	}
	for _, id := range []string{"", "../etc", "a/b", ".x", strings.Repeat("a", 201)} {
		if _, err := b.Open(id); call.ErrorCode(err) != call.Invalid {
			t.Errorf("Open(%q): %v, want invalid", id, err)
		}
	}
}
