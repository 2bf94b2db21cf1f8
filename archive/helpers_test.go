package archive

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/ringfence/ringfence/seal"
)

// newTenant returns a tenant with a fresh key set.
func newTenant(tb testing.TB, id string) Tenant {
	tb.Helper()
	m, err := seal.NewMasterKey()
	if err != nil {
		tb.Fatal(err)
	}
	kr := seal.NewKeyring(m)
	wrapped, err := kr.NewTenantKeys(id)
	if err != nil {
		tb.Fatal(err)
	}
	keys, err := kr.Open(id, wrapped)
	if err != nil {
		tb.Fatal(err)
	}
	return Tenant{ID: id, Keys: keys}
}

var _ Sealer = (*seal.TenantKeys)(nil)

// stream returns a reader of n pseudo-random bytes from seed, generated on
// the fly.
func stream(seed uint64, n int64) io.Reader {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	return io.LimitReader(rand.NewChaCha8(s), n)
}

func randomBytes(seed uint64, n int) []byte {
	b, err := io.ReadAll(stream(seed, int64(n)))
	if err != nil {
		panic(err)
	}
	return b
}

// sealBytes seals plain as blobID with chunkSize, writing in pieces of
// varying size.
func sealBytes(tb testing.TB, t Tenant, blobID string, chunkSize int, plain []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	sw, err := NewSealWriter(&buf, t, blobID, chunkSize)
	if err != nil {
		tb.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for p := plain; len(p) > 0; {
		n := min(len(p), 1+r.IntN(3*MinChunkSize))
		if _, err := sw.Write(p[:n]); err != nil {
			tb.Fatal(err)
		}
		p = p[n:]
	}
	if err := sw.Close(); err != nil {
		tb.Fatal(err)
	}
	if sw.Size() != int64(len(plain)) {
		tb.Fatalf("Size() = %d, want %d", sw.Size(), len(plain))
	}
	return buf.Bytes()
}

// failAfter returns n bytes of r, then err.
type failAfter struct {
	r   io.Reader
	n   int64
	err error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	if int64(len(p)) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= int64(n)
	return n, err
}

var errDropped = errors.New("connection dropped")
