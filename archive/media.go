package archive

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/ringfence/ringfence/call"
)

// Media is the decrypted view of a sealed blob: Size, ReadAt, and Read and
// Seek for net/http.ServeContent (HTTP ranges). It decrypts only the chunks
// a read touches and keeps the last one decrypted, so it holds two chunks of
// memory whatever the blob's size. It is safe for concurrent use (ReadAt
// calls are serialised); Read and Seek share one offset.
//
// A chunk that fails authentication makes the read return an error wrapping
// ErrTampered, with the bytes of the chunks before it. The final chunk is
// authenticated when the Media is opened, so Size is the size that was
// written: truncation and appended chunks are refused by OpenMedia itself.
type Media struct {
	r      io.ReaderAt
	closer io.Closer
	k      *streamKey
	size   int64
	chunks int64

	mu       sync.Mutex
	cached   int64 // index of the chunk in plain, or -1
	plain    []byte
	sealed   []byte
	offset   int64 // for Read and Seek
	closeErr error
	closed   bool
}

var (
	_ io.ReaderAt   = (*Media)(nil)
	_ io.ReadSeeker = (*Media)(nil)
)

// OpenMedia opens blob id of tenant t from b for playback. It returns a
// *call.Error NotFound if there is no such blob, and an error wrapping
// ErrTampered if the header or final chunk does not authenticate (wrong
// tenant, blob moved to another id, truncation, extension). The Media must be
// closed.
func OpenMedia(b Blobs, t Tenant, blobID string) (*Media, error) {
	blob, err := b.Open(blobID)
	if err != nil {
		return nil, err
	}
	m, err := OpenSealed(blob, blob.Size(), t, blobID)
	if err != nil {
		blob.Close()
		return nil, err
	}
	m.closer = blob
	return m, nil
}

// OpenSealed is OpenMedia over any sealed blob of size bytes in r (for
// example an export read back from elsewhere). Closing the Media does not
// close r.
func OpenSealed(r io.ReaderAt, size int64, t Tenant, blobID string) (*Media, error) {
	if err := checkID("blob", blobID); err != nil {
		return nil, err
	}
	k, err := readStreamKey(r, t, blobID)
	if err != nil {
		return nil, err
	}
	plainSize, chunks, err := k.layout(size)
	if err != nil {
		return nil, err
	}
	m := &Media{r: r, k: k, size: plainSize, chunks: chunks, cached: -1,
		plain:  make([]byte, 0, k.chunkSize),
		sealed: make([]byte, k.sealedChunk())}
	if _, err := m.chunk(chunks - 1); err != nil {
		return nil, err
	}
	return m, nil
}

// Size returns the plaintext size.
func (m *Media) Size() int64 { return m.size }

// chunk returns the plaintext of chunk i, valid until the next call; m.mu is
// held or m is not yet shared.
func (m *Media) chunk(i int64) ([]byte, error) {
	if m.closed {
		return nil, errors.New("archive: read of closed media")
	}
	if m.cached == i {
		return m.plain, nil
	}
	m.cached = -1
	n := m.k.sealedChunk()
	final := i == m.chunks-1
	if final {
		n = m.size - i*int64(m.k.chunkSize) + tagSize
	}
	sealed := m.sealed[:n]
	if _, err := m.r.ReadAt(sealed, m.k.headerLen+i*m.k.sealedChunk()); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("archive: blob %s: chunk %d cut short: %w", m.k.blobID, i, ErrTampered)
		}
		return nil, fmt.Errorf("archive: blob %s: reading chunk %d: %w", m.k.blobID, i, err)
	}
	plain, err := m.k.openChunk(m.plain[:0], sealed, uint32(i), final)
	if err != nil {
		return nil, fmt.Errorf("archive: blob %s: chunk %d of %d fails authentication: %w", m.k.blobID, i, m.chunks, ErrTampered)
	}
	m.plain, m.cached = plain, i
	return plain, nil
}

// ReadAt reads plaintext at off, following io.ReaderAt: n < len(p) only
// with an error, io.EOF at the end.
func (m *Media) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, call.Errorf(call.Invalid, "archive: negative offset")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.readAt(p, off)
}

func (m *Media) readAt(p []byte, off int64) (int, error) {
	n := 0
	for len(p) > 0 {
		if off >= m.size {
			return n, io.EOF
		}
		i := off / int64(m.k.chunkSize)
		plain, err := m.chunk(i)
		if err != nil {
			return n, err
		}
		c := copy(p, plain[off-i*int64(m.k.chunkSize):])
		p, off, n = p[c:], off+int64(c), n+c
	}
	return n, nil
}

// Read reads plaintext at the current offset.
func (m *Media) Read(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	n, err := m.readAt(p, m.offset)
	m.offset += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Seek sets the offset for the next Read, following io.Seeker.
func (m *Media) Seek(offset int64, whence int) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += m.offset
	case io.SeekEnd:
		offset += m.size
	default:
		return 0, call.Errorf(call.Invalid, "archive: bad whence %d", whence)
	}
	if offset < 0 {
		return 0, call.Errorf(call.Invalid, "archive: seek before start")
	}
	m.offset = offset
	return offset, nil
}

// Close releases the blob (when opened by OpenMedia) and the decrypted
// chunk, which it zeroes. Closing twice returns the first result.
func (m *Media) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return m.closeErr
	}
	m.closed = true
	clear(m.plain[:cap(m.plain)])
	m.cached = -1
	if m.closer != nil {
		m.closeErr = m.closer.Close()
	}
	return m.closeErr
}
