package archive

import (
	"crypto/sha256"
	"fmt"
	"io"
	"path/filepath"
	"testing"
)

const benchSize = 64 << 20

// BenchmarkSealedWrite measures sealing throughput: "discard" is the
// SealWriter alone, "upload" the whole upload path into a file (SHA-256,
// sealing, file writes, fsync and state save, Complete with its rename).
func BenchmarkSealedWrite(b *testing.B) {
	ten := newTenant(b, "tenant-a")
	data := randomBytes(1, 1<<20)
	for _, cs := range []int{DefaultChunkSize, 1 << 20} {
		b.Run(fmt.Sprintf("discard/chunk=%dKiB", cs>>10), func(b *testing.B) {
			b.SetBytes(benchSize)
			for b.Loop() {
				sw, err := NewSealWriter(io.Discard, ten, "bench", cs)
				if err != nil {
					b.Fatal(err)
				}
				for range benchSize / len(data) {
					sw.Write(data)
				}
				if err := sw.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("upload/chunk=%dKiB", cs>>10), func(b *testing.B) {
			dir := b.TempDir()
			s := openStore(b, dir, UploadsConfig{ChunkSize: cs})
			h := sha256.New()
			for range benchSize / len(data) {
				h.Write(data)
			}
			var sum [32]byte
			h.Sum(sum[:0])
			b.SetBytes(benchSize)
			i := 0
			for b.Loop() {
				i++
				id := fmt.Sprintf("rec-%d", i)
				if _, err := s.uploads.Begin(ten, id, id); err != nil {
					b.Fatal(err)
				}
				if _, err := s.uploads.Append(ten, id, 0, &repeatReader{data: data, n: benchSize}); err != nil {
					b.Fatal(err)
				}
				if _, err := s.uploads.Complete(ten, id, sum); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				s.uploads.Discard(ten, id)
				s.blobs.Remove(id)
				b.StartTimer()
			}
		})
	}
}

// BenchmarkPlayback measures sequential decryption of a stored blob read
// through Media (as http.ServeContent reads it).
func BenchmarkPlayback(b *testing.B) {
	ten := newTenant(b, "tenant-a")
	data := randomBytes(1, 1<<20)
	for _, cs := range []int{DefaultChunkSize, 1 << 20} {
		b.Run(fmt.Sprintf("chunk=%dKiB", cs>>10), func(b *testing.B) {
			blobs, err := OpenDirBlobs(filepath.Join(b.TempDir(), "blobs"))
			if err != nil {
				b.Fatal(err)
			}
			w, _ := blobs.Create("rec")
			sw, err := NewSealWriter(w, ten, "rec", cs)
			if err != nil {
				b.Fatal(err)
			}
			for range benchSize / len(data) {
				sw.Write(data)
			}
			sw.Close()
			if err := w.Commit(); err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 32<<10) // io.Copy's buffer size
			b.SetBytes(benchSize)
			for b.Loop() {
				m, err := OpenMedia(blobs, ten, "rec")
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{m}, buf)
				if err != nil || n != benchSize {
					b.Fatal(n, err)
				}
				m.Close()
			}
		})
	}
}

type repeatReader struct {
	data []byte
	n    int64
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n)]
	n := copy(p, r.data[r.off:])
	r.off = (r.off + n) % len(r.data)
	r.n -= int64(n)
	return n, nil
}
