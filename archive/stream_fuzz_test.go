package archive

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/ringfence/ringfence/call"
)

// FuzzOpenSealed seals a plaintext, applies a list of edits to the sealed
// bytes (flip, cut, insert or delete a byte, append a copy of a stretch,
// claim another size), opens the result and reads it all. Checks: no
// panic; if the blob (its size, or its bytes within that size) changed,
// opening or reading fails with an Internal error wrapping ErrTampered and
// never yields the whole plaintext; if nothing changed, it reads back the
// plaintext, and ReadAt and Seek+Read at the offsets the edits name follow
// io.ReaderAt and io.Seeker. Seeds below and testdata/fuzz/FuzzOpenSealed.
func FuzzOpenSealed(f *testing.F) {
	f.Add([]byte("hello"), uint16(0), []byte{})
	f.Add(randomBytes(1, 3*MinChunkSize+100), uint16(0), []byte{0, 0, 30})    // flip in the header
	f.Add(randomBytes(2, 2*MinChunkSize), uint16(0), []byte{1, 8, 0})         // cut inside chunk 1
	f.Add(randomBytes(3, 2*MinChunkSize+1), uint16(7), []byte{4, 0, 60})      // append a stretch
	f.Add(randomBytes(4, 5000), uint16(1000), []byte{5, 0, 200, 6, 19, 136})  // reads only
	f.Add([]byte{}, uint16(0), []byte{7, 0, 0})                               // size + 1
	f.Add(randomBytes(5, MinChunkSize), uint16(0), []byte{3, 0, 16, 2, 0, 9}) // delete, insert
	ten := newTenant(f, "tenant-a")
	f.Fuzz(func(t *testing.T, plain []byte, cs uint16, edits []byte) {
		plain = plain[:min(len(plain), 16<<10)]
		chunkSize := MinChunkSize + int(cs)%MinChunkSize
		sealed := sealBytes(t, ten, "rec-1", chunkSize, plain)
		b, size, reads := applyEdits(sealed, edits)
		m, err := OpenSealed(bytes.NewReader(b), size, ten, "rec-1")
		// Bytes past the size claimed are not the blob's.
		if size != int64(len(sealed)) || !bytes.Equal(b[:min(len(b), len(sealed))], sealed) {
			var got []byte
			if err == nil {
				got, err = io.ReadAll(m)
				m.Close()
			}
			if !errors.Is(err, ErrTampered) || call.ErrorCode(err) != call.Internal {
				t.Fatalf("tampered blob (%d bytes, size %d; sealed %d): err = %v, want an internal ErrTampered", len(b), size, len(sealed), err)
			}
			if bytes.Equal(got, plain) && len(plain) > 0 {
				t.Fatal("the whole plaintext was read from a tampered blob")
			}
			return
		}
		if err != nil {
			t.Fatalf("untouched blob: %v", err)
		}
		defer m.Close()
		if m.Size() != int64(len(plain)) {
			t.Fatalf("Size() = %d, want %d", m.Size(), len(plain))
		}
		for _, r := range reads {
			checkReadAt(t, m, plain, r.off, r.n)
			checkSeekRead(t, m, plain, r.off, r.n)
		}
		got, err := io.ReadAll(io.NewSectionReader(m, 0, m.Size()))
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("read back %d bytes, %v; want the %d of the plaintext", len(got), err, len(plain))
		}
	})
}

type fuzzRead struct {
	off int64
	n   int
}

// applyEdits applies edits, three bytes each (op, position high, low), to
// a copy of b. It returns the edited bytes, the size to claim, and the
// reads that ops 5 and 6 ask for (they change nothing).
func applyEdits(b, edits []byte) ([]byte, int64, []fuzzRead) {
	b = bytes.Clone(b)
	extra := int64(0)
	var reads []fuzzRead
	for ; len(edits) >= 3; edits = edits[3:] {
		op, arg := edits[0]%8, edits[0]/8 // arg 0..31
		pos := int(edits[1])<<8 | int(edits[2])
		at := pos % (len(b) + 1)
		switch op {
		case 0: // flip bits of a byte
			if at < len(b) {
				b[at] ^= arg + 1
			}
		case 1: // cut
			b = b[:at]
		case 2: // insert a byte
			b = append(b[:at], append([]byte{arg}, b[at:]...)...)
		case 3: // delete a byte
			if at < len(b) {
				b = append(b[:at], b[at+1:]...)
			}
		case 4: // append a copy of a stretch (a replayed chunk)
			b = append(b, b[at:min(len(b), at+MinChunkSize+tagSize)]...)
		case 5, 6: // read at an offset
			reads = append(reads, fuzzRead{off: int64(pos), n: int(arg) * 97})
		case 7: // claim another size
			extra += int64(arg) - 15
		}
	}
	return b, int64(len(b)) + extra, reads
}

// checkReadAt reads n bytes at off and compares them with plain, following
// io.ReaderAt: fewer than n only with io.EOF (past the end), all n with
// no error.
func checkReadAt(t *testing.T, m *Media, plain []byte, off int64, n int) {
	t.Helper()
	p := make([]byte, n)
	got, err := m.ReadAt(p, off)
	want := plain[min(int(off), len(plain)):min(int(off)+n, len(plain))]
	if got != len(want) || !bytes.Equal(p[:got], want) {
		t.Fatalf("ReadAt(%d bytes, %d) = %d bytes; want %d of the plaintext", n, off, got, len(want))
	}
	if got == n && err != nil || got < n && err != io.EOF {
		t.Fatalf("ReadAt(%d bytes, %d) of %d: err %v", n, off, len(plain), err)
	}
}

// checkSeekRead seeks to off and reads up to n bytes with Read.
func checkSeekRead(t *testing.T, m *Media, plain []byte, off int64, n int) {
	t.Helper()
	if got, err := m.Seek(off-m.Size(), io.SeekEnd); err != nil && off >= 0 || err == nil && got != off {
		t.Fatalf("Seek(%d from the end) = %d, %v", off-m.Size(), got, err)
	}
	p := make([]byte, n)
	got, err := io.ReadFull(m, p)
	want := plain[min(int(off), len(plain)):min(int(off)+n, len(plain))]
	if got != len(want) || !bytes.Equal(p[:got], want) {
		t.Fatalf("Read of %d bytes at %d = %d bytes; want %d", n, off, got, len(want))
	}
	if got == n && err != nil || got < n && got > 0 && err != io.ErrUnexpectedEOF || got == 0 && n > 0 && err != io.EOF {
		t.Fatalf("Read of %d bytes at %d of %d: %d, %v", n, off, len(plain), got, err)
	}
}
