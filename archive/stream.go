// Package archive is the storage core of the compliance archive: media
// sealed as streams of AES-256-GCM chunks under a tenant's keys, a small
// blob store interface with a filesystem implementation, resumable uploads,
// random-access playback (HTTP ranges through net/http.ServeContent) and the
// regulator export with its verification.
//
// # Sealed blob format
//
// docs/archive.md defines the format byte by byte. In short: a header holds
// a random 32-byte blob key wrapped by the tenant's Sealer (its additional
// data binds the tenant, the blob id and the header), then the plaintext
// follows in chunks of ChunkSize bytes (64 KiB by default), each sealed with
// AES-256-GCM under the blob key with nonce = 8-byte random prefix || 4-byte
// chunk index and additional data = blob id || chunk index || final flag
// (the STREAM construction of Hoang, Reyhanitabar, Rogaway and Vizár), so a
// flipped byte, a dropped, reordered, truncated or appended chunk, or a blob
// moved to another id or tenant fails authentication. Every such failure
// returns an error wrapping ErrTampered.
//
// Nothing in this package holds a whole file in memory: writers, uploads,
// playback and exports work one chunk at a time.
package archive

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ringfence/ringfence/call"
)

// ErrTampered is wrapped by every error that means stored or exported bytes
// are not what was written: a chunk that fails authentication (a flipped
// byte, a dropped, reordered, truncated or appended chunk), a header or blob
// key that does not open under the tenant's keys for this blob id, a length
// that no sealed blob can have, or an export whose files disagree with its
// manifest.
var ErrTampered = errors.New("archive: tampered or corrupt data")

// Sealer seals and opens small values under one tenant's keys.
// *seal.TenantKeys satisfies it. Open must fail for a ciphertext sealed under
// another key or with other additional data.
type Sealer interface {
	Seal(plaintext, aad []byte) []byte
	Open(ciphertext, aad []byte) ([]byte, error)
}

// Tenant names the owner of a blob: its id is bound into the additional data
// of the wrapped blob key, and Keys (the tenant's key set) wraps it.
type Tenant struct {
	ID   string
	Keys Sealer
}

const (
	// DefaultChunkSize is the plaintext size of every chunk but the last
	// when a writer is given a chunk size of 0.
	DefaultChunkSize = 64 << 10
	// MinChunkSize and MaxChunkSize bound the chunk sizes writers accept
	// and readers believe.
	MinChunkSize = 1 << 10
	MaxChunkSize = 16 << 20

	blobMagic      = "RFAB"
	blobFormat     = 1
	fixedHeaderLen = 4 + 1 + 4 + 8 + 2 // magic, format, chunk size, nonce prefix, wrapped key length
	maxWrappedKey  = 1024
	blobKeySize    = 32
	tagSize        = 16
	maxChunks      = 1 << 32 // the chunk index is 4 bytes
	maxIDLen       = 200
)

// streamKey is the opened key of one blob and its layout.
type streamKey struct {
	aead      cipher.AEAD
	prefix    [8]byte
	chunkSize int
	headerLen int64
	blobID    string
	aadBuf    []byte
}

func checkChunkSize(n int) (int, error) {
	if n == 0 {
		return DefaultChunkSize, nil
	}
	if n < MinChunkSize || n > MaxChunkSize {
		return 0, call.Errorf(call.Invalid, "archive: chunk size %d outside [%d, %d]", n, MinChunkSize, MaxChunkSize)
	}
	return n, nil
}

// checkID validates a blob or upload id: 1 to 200 bytes of ASCII letters,
// digits, '.', '_' and '-', not starting with '.'.
func checkID(kind, id string) error {
	if len(id) == 0 || len(id) > maxIDLen || id[0] == '.' {
		return call.Errorf(call.Invalid, "archive: %s id must be 1 to %d characters and not start with '.'", kind, maxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return call.Errorf(call.Invalid, "archive: %s id may hold only letters, digits, '.', '_' and '-'", kind)
		}
	}
	return nil
}

func appendLenPrefixed(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// wrapAAD is the additional data of the wrapped blob key: a label, the
// tenant id, the blob id (each with a 2-byte length) and the fixed header.
func wrapAAD(tenantID, blobID string, fixed []byte) []byte {
	b := make([]byte, 0, 64+len(tenantID)+len(blobID))
	b = append(b, "ringfence/archive blob key"...)
	b = appendLenPrefixed(b, tenantID)
	b = appendLenPrefixed(b, blobID)
	return append(b, fixed...)
}

// newStreamKey makes a fresh blob key and returns it with the blob header.
func newStreamKey(t Tenant, blobID string, chunkSize int) (*streamKey, []byte, error) {
	if err := checkID("blob", blobID); err != nil {
		return nil, nil, err
	}
	if t.Keys == nil {
		return nil, nil, call.Errorf(call.Invalid, "archive: no tenant keys")
	}
	chunkSize, err := checkChunkSize(chunkSize)
	if err != nil {
		return nil, nil, err
	}
	var key [blobKeySize]byte
	rand.Read(key[:])
	k := &streamKey{chunkSize: chunkSize, blobID: blobID}
	rand.Read(k.prefix[:])
	if k.aead, err = newGCM(key[:]); err != nil {
		return nil, nil, err
	}
	fixed := make([]byte, fixedHeaderLen)
	copy(fixed, blobMagic)
	fixed[4] = blobFormat
	binary.BigEndian.PutUint32(fixed[5:], uint32(chunkSize))
	copy(fixed[9:], k.prefix[:])
	// The additional data covers the header up to the wrapped key's
	// length; a changed length reads other bytes as the key, which then
	// fails to open.
	wrapped := t.Keys.Seal(key[:], wrapAAD(t.ID, blobID, fixed[:17]))
	clear(key[:])
	if len(wrapped) > maxWrappedKey {
		return nil, nil, fmt.Errorf("archive: wrapped key of %d bytes is too long", len(wrapped))
	}
	binary.BigEndian.PutUint16(fixed[17:], uint16(len(wrapped)))
	header := append(fixed, wrapped...)
	k.headerLen = int64(len(header))
	return k, header, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	return cipher.NewGCM(block)
}

// readStreamKey reads and opens the header of the sealed blob in r. Errors
// about the header's contents wrap ErrTampered.
func readStreamKey(r io.ReaderAt, t Tenant, blobID string) (*streamKey, error) {
	if t.Keys == nil {
		return nil, call.Errorf(call.Invalid, "archive: no tenant keys")
	}
	fixed := make([]byte, fixedHeaderLen)
	if _, err := r.ReadAt(fixed, 0); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("archive: blob %s: header truncated: %w", blobID, ErrTampered)
		}
		return nil, fmt.Errorf("archive: blob %s: reading header: %w", blobID, err)
	}
	if string(fixed[:4]) != blobMagic || fixed[4] != blobFormat {
		return nil, fmt.Errorf("archive: blob %s: not a sealed blob of format %d: %w", blobID, blobFormat, ErrTampered)
	}
	chunkSize := int(binary.BigEndian.Uint32(fixed[5:]))
	if chunkSize < MinChunkSize || chunkSize > MaxChunkSize {
		return nil, fmt.Errorf("archive: blob %s: chunk size %d out of range: %w", blobID, chunkSize, ErrTampered)
	}
	wrappedLen := int(binary.BigEndian.Uint16(fixed[17:]))
	if wrappedLen > maxWrappedKey {
		return nil, fmt.Errorf("archive: blob %s: wrapped key length %d: %w", blobID, wrappedLen, ErrTampered)
	}
	wrapped := make([]byte, wrappedLen)
	if _, err := r.ReadAt(wrapped, fixedHeaderLen); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("archive: blob %s: header truncated: %w", blobID, ErrTampered)
		}
		return nil, fmt.Errorf("archive: blob %s: reading header: %w", blobID, err)
	}
	key, err := t.Keys.Open(wrapped, wrapAAD(t.ID, blobID, fixed[:17]))
	if err != nil {
		return nil, fmt.Errorf("archive: blob %s: blob key does not open (other tenant, other blob id or tampered header): %w: %w", blobID, ErrTampered, err)
	}
	defer clear(key)
	if len(key) != blobKeySize {
		return nil, fmt.Errorf("archive: blob %s: blob key of %d bytes: %w", blobID, len(key), ErrTampered)
	}
	k := &streamKey{chunkSize: chunkSize, blobID: blobID, headerLen: int64(fixedHeaderLen + wrappedLen)}
	copy(k.prefix[:], fixed[9:17])
	if k.aead, err = newGCM(key); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *streamKey) nonce(n *[12]byte, index uint32) []byte {
	copy(n[:8], k.prefix[:])
	binary.BigEndian.PutUint32(n[8:], index)
	return n[:]
}

// aad returns blob id (with a 2-byte length) || 4-byte index || final flag,
// in a buffer reused across calls (a streamKey is used by one goroutine at a
// time).
func (k *streamKey) aad(index uint32, final bool) []byte {
	b := appendLenPrefixed(k.aadBuf[:0], k.blobID)
	b = binary.BigEndian.AppendUint32(b, index)
	f := byte(0)
	if final {
		f = 1
	}
	k.aadBuf = append(b, f)
	return k.aadBuf
}

func (k *streamKey) sealChunk(dst, plain []byte, index uint32, final bool) []byte {
	var n [12]byte
	return k.aead.Seal(dst, k.nonce(&n, index), plain, k.aad(index, final))
}

func (k *streamKey) openChunk(dst, sealed []byte, index uint32, final bool) ([]byte, error) {
	var n [12]byte
	return k.aead.Open(dst, k.nonce(&n, index), sealed, k.aad(index, final))
}

// sealedChunk is the on-disk size of a full chunk.
func (k *streamKey) sealedChunk() int64 { return int64(k.chunkSize) + tagSize }

// layout returns the plaintext size and chunk count of a sealed blob of
// fileSize bytes. The last chunk holds 1 to chunkSize bytes, or 0 when the
// plaintext is empty (then it is the only chunk).
func (k *streamKey) layout(fileSize int64) (plainSize, chunks int64, err error) {
	body := fileSize - k.headerLen
	if body < tagSize {
		return 0, 0, fmt.Errorf("archive: blob %s: shorter than one chunk: %w", k.blobID, ErrTampered)
	}
	full, rest := body/k.sealedChunk(), body%k.sealedChunk()
	switch {
	case rest == 0:
		plainSize, chunks = full*int64(k.chunkSize), full
	case rest < tagSize || rest == tagSize && full > 0:
		return 0, 0, fmt.Errorf("archive: blob %s: length %d fits no sealed blob: %w", k.blobID, fileSize, ErrTampered)
	default:
		plainSize, chunks = full*int64(k.chunkSize)+rest-tagSize, full+1
	}
	if chunks > maxChunks {
		return 0, 0, fmt.Errorf("archive: blob %s: more than 2^32 chunks: %w", k.blobID, ErrTampered)
	}
	return plainSize, chunks, nil
}

// SealWriter seals a plaintext stream into the sealed blob format. Write
// seals each chunk as soon as the next one begins, so it holds at most one
// chunk of plaintext; Close seals the final chunk. A SealWriter is not safe
// for concurrent use.
type SealWriter struct {
	w     io.Writer
	k     *streamKey
	buf   []byte // pending plaintext, at most chunkSize bytes
	out   []byte
	next  uint32 // index of the chunk buf will become
	size  int64  // plaintext bytes accepted
	err   error
	final bool
}

// NewSealWriter writes the header of a new blob sealed for tenant t under
// blobID to w and returns a writer for its plaintext. chunkSize 0 means
// DefaultChunkSize. The blob opens only with the same tenant and blob id.
// Close must be called to seal the final chunk; it does not close w.
func NewSealWriter(w io.Writer, t Tenant, blobID string, chunkSize int) (*SealWriter, error) {
	k, header, err := newStreamKey(t, blobID, chunkSize)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(header); err != nil {
		return nil, fmt.Errorf("archive: writing blob header: %w", err)
	}
	return resumeSealWriter(w, k, 0, nil, 0), nil
}

// resumeSealWriter continues a stream of which chunks [0, next) are written
// and pending is plaintext not yet sealed; size is the plaintext so far.
func resumeSealWriter(w io.Writer, k *streamKey, next uint32, pending []byte, size int64) *SealWriter {
	s := &SealWriter{w: w, k: k, next: next, size: size,
		buf: make([]byte, 0, k.chunkSize),
		out: make([]byte, 0, k.chunkSize+tagSize)}
	s.buf = append(s.buf, pending...)
	return s
}

// Write seals p. Errors of the underlying writer are returned and sticky.
func (s *SealWriter) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.final {
		return 0, errors.New("archive: write after Close")
	}
	n := 0
	for len(p) > 0 {
		if len(s.buf) == s.k.chunkSize { // more data follows: not the final chunk
			if err := s.flush(false); err != nil {
				return n, err
			}
		}
		c := copy(s.buf[len(s.buf):s.k.chunkSize], p)
		s.buf = s.buf[:len(s.buf)+c]
		p = p[c:]
		n += c
		s.size += int64(c)
	}
	return n, nil
}

func (s *SealWriter) flush(final bool) error {
	if uint64(s.next) >= maxChunks-1 && !final {
		s.err = call.Errorf(call.TooLarge, "archive: blob over 2^32 chunks")
		return s.err
	}
	s.out = s.k.sealChunk(s.out[:0], s.buf, s.next, final)
	clear(s.buf)
	s.buf = s.buf[:0]
	if _, err := s.w.Write(s.out); err != nil {
		s.err = fmt.Errorf("archive: writing blob chunk: %w", err)
		return s.err
	}
	s.next++
	return nil
}

// Size returns the number of plaintext bytes written so far.
func (s *SealWriter) Size() int64 { return s.size }

// Close seals the final chunk and writes it. It does not close the
// underlying writer. Calling it twice returns an error.
func (s *SealWriter) Close() error {
	if s.err != nil {
		return s.err
	}
	if s.final {
		return errors.New("archive: SealWriter closed twice")
	}
	s.final = true
	return s.flush(true)
}
