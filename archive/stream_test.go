package archive

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/ringfence/ringfence/call"
)

func TestRoundTrip(t *testing.T) {
	ten := newTenant(t, "tenant-a")
	for _, cs := range []int{MinChunkSize, DefaultChunkSize} {
		for _, size := range []int{0, 1, cs - 1, cs, cs + 1, 2 * cs, 7*cs + 13} {
			t.Run("", func(t *testing.T) {
				plain := randomBytes(uint64(size), size)
				sealed := sealBytes(t, ten, "blob-1", cs, plain)
				if want := expectedSealedLen(size, cs); len(sealed) != want {
					t.Fatalf("chunk %d size %d: sealed %d bytes, want %d", cs, size, len(sealed), want)
				}
				m, err := OpenSealed(bytes.NewReader(sealed), int64(len(sealed)), ten, "blob-1")
				if err != nil {
					t.Fatalf("chunk %d size %d: %v", cs, size, err)
				}
				defer m.Close()
				if m.Size() != int64(size) {
					t.Fatalf("Size() = %d, want %d", m.Size(), size)
				}
				got, err := io.ReadAll(m)
				if err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("chunk %d size %d: ReadAll: %d bytes, equal %v, err %v", cs, size, len(got), bytes.Equal(got, plain), err)
				}
				// Random ranges through ReadAt.
				r := rand.New(rand.NewPCG(uint64(size), 9))
				for range 20 {
					if size == 0 {
						break
					}
					off := r.IntN(size)
					n := r.IntN(size - off + 1)
					p := make([]byte, n)
					k, err := m.ReadAt(p, int64(off))
					if k != n || (err != nil && !(err == io.EOF && off+n == size)) || !bytes.Equal(p, plain[off:off+n]) {
						t.Fatalf("ReadAt(%d, %d) = %d, %v", n, off, k, err)
					}
				}
				if n, err := m.ReadAt(make([]byte, 1), int64(size)); n != 0 || err != io.EOF {
					t.Fatalf("ReadAt at end = %d, %v; want 0, EOF", n, err)
				}
			})
		}
	}
}

// expectedSealedLen is the documented layout: the header (fixed part and a
// seal.TenantKeys ciphertext of the 32-byte key: 1+4+12+32+16 bytes), then
// the plaintext with one tag per chunk, at least one chunk.
func expectedSealedLen(size, cs int) int {
	chunks := max(1, (size+cs-1)/cs)
	return fixedHeaderLen + 65 + size + chunks*tagSize
}

func TestOpenRefusesOtherBinding(t *testing.T) {
	a := newTenant(t, "tenant-a")
	plain := randomBytes(1, 3000)
	sealed := sealBytes(t, a, "blob-1", MinChunkSize, plain)
	other := newTenant(t, "tenant-b")
	tests := []struct {
		name   string
		tenant Tenant
		blobID string
	}{
		{"other tenant's keys", other, "blob-1"},
		{"same keys, other tenant id", Tenant{ID: "tenant-b", Keys: a.Keys}, "blob-1"},
		{"other blob id", a, "blob-2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := OpenSealed(bytes.NewReader(sealed), int64(len(sealed)), tt.tenant, tt.blobID)
			if !errors.Is(err, ErrTampered) {
				t.Fatalf("err = %v, want ErrTampered", err)
			}
		})
	}
}

// TestTamperDetected stores a blob in DirBlobs, changes its file on disk
// and plays it back.
func TestTamperDetected(t *testing.T) {
	const cs = MinChunkSize
	ten := newTenant(t, "tenant-a")
	plain := randomBytes(2, 5*cs+100) // chunks 0-4 full, chunk 5 has 100 bytes
	sealed := sealBytes(t, ten, "rec-1", cs, plain)
	k, err := readStreamKey(bytes.NewReader(sealed), ten, "rec-1")
	if err != nil {
		t.Fatal(err)
	}
	h, sc := int(k.headerLen), int(k.sealedChunk())
	chunk := func(b []byte, i int) []byte { return b[h+i*sc : min(len(b), h+(i+1)*sc)] }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

	tests := []struct {
		name   string
		tamper func(b []byte) []byte
	}{
		{"flip a byte in chunk 2", func(b []byte) []byte { b[h+2*sc+77] ^= 1; return b }},
		{"flip a byte in a tag", func(b []byte) []byte { b[h+sc-1] ^= 0x80; return b }},
		{"flip a byte in the header", func(b []byte) []byte { b[10] ^= 1; return b }},
		{"flip a byte in the wrapped key", func(b []byte) []byte { b[h-1] ^= 1; return b }},
		{"drop chunk 1", func(b []byte) []byte { return cat(b[:h], chunk(b, 0), b[h+2*sc:]) }},
		{"swap chunks 1 and 2", func(b []byte) []byte {
			return cat(b[:h], chunk(b, 0), chunk(b, 2), chunk(b, 1), b[h+3*sc:])
		}},
		{"truncate the last chunk", func(b []byte) []byte { return b[:len(b)-10] }},
		{"drop the last chunk", func(b []byte) []byte { return b[:h+5*sc] }},
		{"append a chunk", func(b []byte) []byte { return cat(b, chunk(b, 1)) }},
		{"cut inside the header", func(b []byte) []byte { return b[:h-5] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			blobs, err := OpenDirBlobs(dir)
			if err != nil {
				t.Fatal(err)
			}
			w, err := blobs.Create("rec-1")
			if err != nil {
				t.Fatal(err)
			}
			w.Write(sealed)
			if err := w.Commit(); err != nil {
				t.Fatal(err)
			}
			path := blobs.path("rec-1")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tt.tamper(bytes.Clone(b)), 0o600); err != nil {
				t.Fatal(err)
			}
			m, err := OpenMedia(blobs, ten, "rec-1")
			if err == nil {
				_, err = io.ReadAll(m)
				m.Close()
			}
			if !errors.Is(err, ErrTampered) {
				t.Fatalf("playback err = %v, want ErrTampered", err)
			}
			if call.ErrorCode(err) != call.Internal {
				t.Fatalf("code %q, want internal", call.ErrorCode(err))
			}
		})
	}
	t.Run("untouched plays", func(t *testing.T) {
		m, err := OpenSealed(bytes.NewReader(sealed), int64(len(sealed)), ten, "rec-1")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(m)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("err %v, equal %v", err, bytes.Equal(got, plain))
		}
	})
}

func TestSealWriterMisuse(t *testing.T) {
	ten := newTenant(t, "tenant-a")
	tests := []struct {
		name      string
		blobID    string
		chunkSize int
		tenant    Tenant
	}{
		{"empty id", "", 0, ten},
		{"path in id", "../x", 0, ten},
		{"dot id", ".hidden", 0, ten},
		{"chunk too small", "b", 100, ten},
		{"chunk too large", "b", MaxChunkSize + 1, ten},
		{"no keys", "b", 0, Tenant{ID: "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSealWriter(io.Discard, tt.tenant, tt.blobID, tt.chunkSize)
			if call.ErrorCode(err) != call.Invalid {
				t.Fatalf("err = %v, want invalid", err)
			}
		})
	}
	sw, err := NewSealWriter(io.Discard, ten, "b", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sw.Write([]byte("x")); err == nil {
		t.Fatal("write after close succeeded")
	}
	if err := sw.Close(); err == nil {
		t.Fatal("second close succeeded")
	}
}
