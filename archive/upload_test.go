package archive

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
)

type store struct {
	dir     string
	blobs   *DirBlobs
	uploads *Uploads
}

func openStore(tb testing.TB, dir string, cfg UploadsConfig) *store {
	tb.Helper()
	blobs, err := OpenDirBlobs(filepath.Join(dir, "blobs"))
	if err != nil {
		tb.Fatal(err)
	}
	ups, err := OpenUploads(filepath.Join(dir, "uploads"), blobs, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return &store{dir: dir, blobs: blobs, uploads: ups}
}

func playbackSum(tb testing.TB, s *store, ten Tenant, blobID string) ([32]byte, int64) {
	tb.Helper()
	m, err := OpenMedia(s.blobs, ten, blobID)
	if err != nil {
		tb.Fatal(err)
	}
	defer m.Close()
	h := sha256.New()
	n, err := io.Copy(h, m)
	if err != nil {
		tb.Fatal(err)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, n
}

func TestUploadSmall(t *testing.T) {
	ten := newTenant(t, "tenant-a")
	cfg := UploadsConfig{ChunkSize: MinChunkSize, MaxSize: 10 * MinChunkSize}
	plain := randomBytes(3, 4*MinChunkSize+5)
	sum := sha256.Sum256(plain)

	t.Run("in pieces", func(t *testing.T) {
		s := openStore(t, t.TempDir(), cfg)
		st, err := s.uploads.Begin(ten, "msg-1", "rec-1")
		if err != nil || st.Offset != 0 || st.Done {
			t.Fatalf("Begin = %+v, %v", st, err)
		}
		for _, cut := range []int{0, 1, MinChunkSize, MinChunkSize, 2*MinChunkSize + 7, len(plain)} {
			st, err = s.uploads.Append(ten, "msg-1", st.Offset, bytes.NewReader(plain[st.Offset:cut]))
			if err != nil || st.Offset != int64(cut) {
				t.Fatalf("Append to %d = %+v, %v", cut, st, err)
			}
		}
		st, err = s.uploads.Complete(ten, "msg-1", sum)
		if err != nil || !st.Done || st.SHA256 != sum || st.Offset != int64(len(plain)) {
			t.Fatalf("Complete = %+v, %v", st, err)
		}
		if got, n := playbackSum(t, s, ten, "rec-1"); got != sum || n != int64(len(plain)) {
			t.Fatalf("playback differs (%d bytes)", n)
		}
		// Idempotent retries.
		if st2, err := s.uploads.Complete(ten, "msg-1", sum); err != nil || st2 != st {
			t.Fatalf("second Complete = %+v, %v", st2, err)
		}
		if st2, err := s.uploads.Begin(ten, "msg-1", "rec-1"); err != nil || st2 != st {
			t.Fatalf("Begin after Complete = %+v, %v", st2, err)
		}
		if _, err := s.uploads.Complete(ten, "msg-1", [32]byte{1}); call.ErrorCode(err) != call.Conflict {
			t.Fatalf("Complete with another sum: %v, want conflict", err)
		}
		if _, err := s.uploads.Append(ten, "msg-1", st.Offset, strings.NewReader("x")); call.ErrorCode(err) != call.Conflict {
			t.Fatalf("Append after Complete: %v, want conflict", err)
		}
		if err := s.uploads.Discard(ten, "msg-1"); err != nil {
			t.Fatal(err)
		}
		if got, _ := playbackSum(t, s, ten, "rec-1"); got != sum {
			t.Fatal("Discard of a completed upload changed its blob")
		}
		if _, err := s.uploads.Status(ten, "msg-1"); call.ErrorCode(err) != call.NotFound {
			t.Fatalf("Status after Discard: %v", err)
		}
	})

	t.Run("empty", func(t *testing.T) {
		s := openStore(t, t.TempDir(), cfg)
		if _, err := s.uploads.Begin(ten, "msg-0", "rec-0"); err != nil {
			t.Fatal(err)
		}
		empty := sha256.Sum256(nil)
		if _, err := s.uploads.Complete(ten, "msg-0", empty); err != nil {
			t.Fatal(err)
		}
		if got, n := playbackSum(t, s, ten, "rec-0"); got != empty || n != 0 {
			t.Fatalf("playback of empty: %d bytes", n)
		}
	})

	tests := []struct {
		name string
		run  func(t *testing.T, s *store) error
		code string
	}{
		{"wrong SHA-256 refused", func(t *testing.T, s *store) error {
			s.uploads.Append(ten, "msg-1", 0, bytes.NewReader(plain))
			_, err := s.uploads.Complete(ten, "msg-1", sha256.Sum256(plain[1:]))
			if _, serr := s.uploads.Status(ten, "msg-1"); call.ErrorCode(serr) != call.NotFound {
				t.Errorf("refused upload still there: %v", serr)
			}
			if _, oerr := s.blobs.Open("rec-1"); call.ErrorCode(oerr) != call.NotFound {
				t.Errorf("refused upload stored: %v", oerr)
			}
			return err
		}, call.Invalid},
		{"append at the wrong offset", func(t *testing.T, s *store) error {
			s.uploads.Append(ten, "msg-1", 0, bytes.NewReader(plain[:100]))
			st, err := s.uploads.Append(ten, "msg-1", 50, bytes.NewReader(plain[50:]))
			if st.Offset != 100 {
				t.Errorf("status offset %d, want 100", st.Offset)
			}
			return err
		}, call.Conflict},
		{"too large", func(t *testing.T, s *store) error {
			_, err := s.uploads.Append(ten, "msg-1", 0, stream(1, cfg.MaxSize+1))
			if _, serr := s.uploads.Status(ten, "msg-1"); call.ErrorCode(serr) != call.NotFound {
				t.Errorf("oversized upload still there: %v", serr)
			}
			return err
		}, call.TooLarge},
		{"exactly the limit", func(t *testing.T, s *store) error {
			_, err := s.uploads.Append(ten, "msg-1", 0, stream(1, cfg.MaxSize))
			return err
		}, ""},
		{"begin again with another blob", func(t *testing.T, s *store) error {
			_, err := s.uploads.Begin(ten, "msg-1", "rec-2")
			return err
		}, call.Conflict},
		{"other tenant cannot see it", func(t *testing.T, s *store) error {
			_, err := s.uploads.Status(newTenant(t, "tenant-b"), "msg-1")
			return err
		}, call.NotFound},
		{"other tenant, same upload id, is another upload", func(t *testing.T, s *store) error {
			st, err := s.uploads.Begin(newTenant(t, "tenant-b"), "msg-1", "rec-9")
			if st.Offset != 0 {
				t.Errorf("offset %d", st.Offset)
			}
			return err
		}, ""},
		{"unknown upload", func(t *testing.T, s *store) error {
			_, err := s.uploads.Append(ten, "msg-404", 0, strings.NewReader("x"))
			return err
		}, call.NotFound},
		{"bad upload id", func(t *testing.T, s *store) error {
			_, err := s.uploads.Begin(ten, "a/b", "rec-1")
			return err
		}, call.Invalid},
		{"blob id taken", func(t *testing.T, s *store) error {
			w, _ := s.blobs.Create("rec-1")
			w.Write([]byte("x"))
			w.Commit()
			s.uploads.Append(ten, "msg-1", 0, bytes.NewReader(plain))
			_, err := s.uploads.Complete(ten, "msg-1", sum)
			return err
		}, call.Conflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, t.TempDir(), cfg)
			if _, err := s.uploads.Begin(ten, "msg-1", "rec-1"); err != nil {
				t.Fatal(err)
			}
			if err := tt.run(t, s); call.ErrorCode(err) != tt.code {
				t.Fatalf("err = %v, want code %q", err, tt.code)
			}
		})
	}
}

// TestUploadNoPlaintextOnDisk interrupts uploads mid-chunk (so plaintext is
// pending in the state file) and scans every file for a marker repeated
// through the plaintext.
func TestUploadNoPlaintextOnDisk(t *testing.T) {
	ten := newTenant(t, "tenant-a")
	marker := []byte("RINGFENCE-PLAINTEXT-MARKER-0123456789-abcdefghijklmnopqrstuvwxyz")[:64]
	plain := bytes.Repeat(marker, 3*DefaultChunkSize/64+50)
	dir := t.TempDir()
	s := openStore(t, dir, UploadsConfig{})
	for _, id := range []string{"done", "pending"} {
		if _, err := s.uploads.Begin(ten, id, "rec-"+id); err != nil {
			t.Fatal(err)
		}
		st, err := s.uploads.Append(ten, id, 0, &failAfter{r: bytes.NewReader(plain), n: DefaultChunkSize + 1000, err: errDropped})
		if !errors.Is(err, errDropped) || st.Offset != DefaultChunkSize+1000 {
			t.Fatalf("interrupted Append = %+v, %v", st, err)
		}
	}
	if _, err := s.uploads.Append(ten, "done", DefaultChunkSize+1000, bytes.NewReader(plain[DefaultChunkSize+1000:])); err != nil {
		t.Fatal(err)
	}
	if _, err := s.uploads.Complete(ten, "done", sha256.Sum256(plain)); err != nil {
		t.Fatal(err)
	}
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		if bytes.Contains(b, marker) || bytes.Contains(b, marker[:16]) {
			t.Errorf("plaintext marker found in %s", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files != 4 { // the stored blob; state of "done"; state and part of "pending"
		t.Errorf("scanned %d files, want 4", files)
	}
	// The scan can fail: the marker is in the played-back plaintext.
	m, err := OpenMedia(s.blobs, ten, "rec-done")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	got, _ := io.ReadAll(m)
	if !bytes.Contains(got, marker) {
		t.Fatal("marker not in plaintext")
	}
}

// TestUploadLarge uploads a recording generated on the fly, interrupts it
// at an odd offset, resumes from Status().Offset after reopening the
// Uploads from disk (as after a restart, with a crash's trailing garbage in
// the partial file), completes it and plays it back, comparing SHA-256 and
// sampling the heap throughout. 128 MiB by default; 1 GiB with
// RINGFENCE_LONG=1.
func TestUploadLarge(t *testing.T) {
	size := int64(128 << 20)
	if os.Getenv("RINGFENCE_LONG") == "1" {
		size = 1 << 30
	}
	if testing.Short() {
		size = 16 << 20
	}
	const memLimit = 64 << 20
	ten := newTenant(t, "tenant-a")
	dir := t.TempDir()

	var want [32]byte
	{
		h := sha256.New()
		io.Copy(h, stream(7, size))
		h.Sum(want[:0])
	}
	runtime.GC()

	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	defer func() {
		close(stop)
		wg.Wait()
		t.Logf("%d MiB: peak HeapInuse %.1f MiB", size>>20, float64(peak.Load())/(1<<20))
		if peak.Load() >= memLimit {
			t.Errorf("peak HeapInuse %d bytes, limit %d", peak.Load(), memLimit)
		}
	}()

	s := openStore(t, dir, UploadsConfig{})
	if _, err := s.uploads.Begin(ten, "msg-big", "rec-big"); err != nil {
		t.Fatal(err)
	}
	cut := size/3 + 12345 // not on a chunk boundary
	st, err := s.uploads.Append(ten, "msg-big", 0, &failAfter{r: stream(7, size), n: cut, err: errDropped})
	if !errors.Is(err, errDropped) || st.Offset != cut {
		t.Fatalf("interrupted Append = %+v, %v", st, err)
	}

	// A crash after sealing more chunks but before saving the state.
	_, partPath := s.uploads.files(ten, "msg-big")
	f, err := os.OpenFile(partPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(bytes.Repeat([]byte{0xee}, 3*DefaultChunkSize+5))
	f.Close()

	// Restart: a new Uploads over the same directories.
	s = openStore(t, dir, UploadsConfig{})
	st, err = s.uploads.Status(ten, "msg-big")
	if err != nil || st.Offset != cut {
		t.Fatalf("Status after restart = %+v, %v", st, err)
	}
	rest := stream(7, size)
	if _, err := io.CopyN(io.Discard, rest, st.Offset); err != nil {
		t.Fatal(err)
	}
	if st, err = s.uploads.Append(ten, "msg-big", st.Offset, rest); err != nil || st.Offset != size {
		t.Fatalf("resumed Append = %+v, %v", st, err)
	}
	if _, err := s.uploads.Complete(ten, "msg-big", want); err != nil {
		t.Fatal(err)
	}
	got, n := playbackSum(t, s, ten, "rec-big")
	if n != size || got != want {
		t.Fatalf("played back %d bytes, SHA-256 equal %v", n, got == want)
	}
}

// TestUploadConcurrentAppends races appends at the same offset: exactly one
// wins, the others get Conflict.
func TestUploadConcurrentAppends(t *testing.T) {
	ten := newTenant(t, "tenant-a")
	s := openStore(t, t.TempDir(), UploadsConfig{ChunkSize: MinChunkSize})
	if _, err := s.uploads.Begin(ten, "msg-1", "rec-1"); err != nil {
		t.Fatal(err)
	}
	plain := randomBytes(8, 3*MinChunkSize)
	var wg sync.WaitGroup
	var ok, conflict atomic.Int32
	for range 4 {
		wg.Go(func() {
			_, err := s.uploads.Append(ten, "msg-1", 0, bytes.NewReader(plain))
			switch call.ErrorCode(err) {
			case "":
				ok.Add(1)
			case call.Conflict:
				conflict.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || conflict.Load() != 3 {
		t.Fatalf("%d succeeded, %d conflicts", ok.Load(), conflict.Load())
	}
	if _, err := s.uploads.Complete(ten, "msg-1", sha256.Sum256(plain)); err != nil {
		t.Fatal(err)
	}
}

// TestUploadIntoOtherBlobs completes into a Blobs that cannot take over
// the file (so it is copied through Create).
func TestUploadIntoOtherBlobs(t *testing.T) {
	ten := newTenant(t, "tenant-a")
	dir := t.TempDir()
	inner, err := OpenDirBlobs(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	blobs := struct{ Blobs }{inner} // hides DirBlobs.importFile
	ups, err := OpenUploads(filepath.Join(dir, "uploads"), blobs, UploadsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	plain := randomBytes(9, DefaultChunkSize+1)
	ups.Begin(ten, "msg-1", "rec-1")
	if _, err := ups.Append(ten, "msg-1", 0, bytes.NewReader(plain)); err != nil {
		t.Fatal(err)
	}
	if _, err := ups.Complete(ten, "msg-1", sha256.Sum256(plain)); err != nil {
		t.Fatal(err)
	}
	if got, n := playbackSum(t, &store{blobs: inner}, ten, "rec-1"); got != sha256.Sum256(plain) || n != int64(len(plain)) {
		t.Fatal("copied blob differs")
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "uploads")); len(left) != 1 { // the completed state
		t.Fatalf("%d files left in staging", len(left))
	}
}
