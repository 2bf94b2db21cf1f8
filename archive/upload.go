package archive

import (
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/ringfence/ringfence/call"
)

// DefaultMaxUploadSize is the largest upload accepted when UploadsConfig
// leaves MaxSize at 0: 2 GiB.
const DefaultMaxUploadSize = 2 << 30

// UploadsConfig sets the limits of Uploads. Zero values are the defaults.
type UploadsConfig struct {
	MaxSize   int64 // largest plaintext accepted; 0 means DefaultMaxUploadSize
	ChunkSize int   // plaintext bytes per sealed chunk; 0 means DefaultChunkSize
}

// Uploads receives media in pieces, sealing it as it arrives, and survives
// both dropped connections and process restarts: an upload is a partial
// sealed blob file and a small state file sealed under the tenant's keys,
// both in a staging directory (mode 0700, files 0600). No plaintext reaches
// the disk. Memory per upload in progress is a few chunks.
//
// Uploads are named by the tenant and a client-chosen upload id (for
// example the client's message id), so Begin is idempotent: beginning
// again returns the upload's status, from which the client resumes.
// Another tenant's upload of the same id is a different upload.
//
// Uploads is safe for concurrent use; calls on one upload are serialised.
type Uploads struct {
	dir       string
	blobs     Blobs
	maxSize   int64
	chunkSize int

	mu    sync.Mutex
	locks map[string]*uploadLock
}

type uploadLock struct {
	sync.Mutex
	refs int
}

// Status is the state of an upload.
type Status struct {
	UploadID string
	BlobID   string
	// Offset is the number of bytes received and committed: the next
	// Append must start there, after an interruption too.
	Offset int64
	// Done is set once Complete succeeded; the blob is then in Blobs and
	// SHA256 is the checked digest of its plaintext.
	Done   bool
	SHA256 [sha256.Size]byte
}

// OpenUploads opens (creating if needed) the staging directory dir. Blobs
// receives completed uploads; if dir is on the same filesystem as a
// DirBlobs, completing an upload renames its file instead of copying it.
func OpenUploads(dir string, blobs Blobs, cfg UploadsConfig) (*Uploads, error) {
	if cfg.MaxSize == 0 {
		cfg.MaxSize = DefaultMaxUploadSize
	}
	if cfg.MaxSize < 0 {
		return nil, call.Errorf(call.Invalid, "archive: negative upload size limit")
	}
	chunkSize, err := checkChunkSize(cfg.ChunkSize)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("archive: upload directory: %w", err)
	}
	return &Uploads{dir: dir, blobs: blobs, maxSize: cfg.MaxSize, chunkSize: chunkSize,
		locks: map[string]*uploadLock{}}, nil
}

// upload is one upload's state as kept (sealed) in its state file.
type upload struct {
	blobID  string
	done    bool
	next    uint32 // chunks sealed into the partial file
	offset  int64  // plaintext bytes received
	hash    []byte // sha256 digest state (encoding.BinaryMarshaler)
	sum     [sha256.Size]byte
	pending []byte // received plaintext not yet sealed: at most one chunk
}

const uploadStateFormat = 1

func (u *upload) marshal() []byte {
	b := make([]byte, 0, 64+len(u.blobID)+len(u.hash)+len(u.pending))
	b = append(b, uploadStateFormat)
	b = appendLenPrefixed(b, u.blobID)
	done := byte(0)
	if u.done {
		done = 1
	}
	b = append(b, done)
	b = binary.BigEndian.AppendUint32(b, u.next)
	b = binary.BigEndian.AppendUint64(b, uint64(u.offset))
	b = appendLenPrefixed(b, string(u.hash))
	b = append(b, u.sum[:]...)
	return append(b, u.pending...)
}

func unmarshalUpload(b []byte) (*upload, error) {
	bad := errors.New("archive: malformed upload state")
	var u upload
	take := func(n int) []byte {
		if len(b) < n {
			return nil
		}
		v := b[:n]
		b = b[n:]
		return v
	}
	str := func() ([]byte, bool) {
		l := take(2)
		if l == nil {
			return nil, false
		}
		v := take(int(binary.BigEndian.Uint16(l)))
		return v, v != nil
	}
	if v := take(1); v == nil || v[0] != uploadStateFormat {
		return nil, bad
	}
	id, ok := str()
	if !ok {
		return nil, bad
	}
	u.blobID = string(id)
	fixed := take(1 + 4 + 8)
	if fixed == nil {
		return nil, bad
	}
	u.done = fixed[0] == 1
	u.next = binary.BigEndian.Uint32(fixed[1:])
	u.offset = int64(binary.BigEndian.Uint64(fixed[5:]))
	h, ok := str()
	if !ok {
		return nil, bad
	}
	u.hash = append([]byte(nil), h...)
	sum := take(sha256.Size)
	if sum == nil {
		return nil, bad
	}
	copy(u.sum[:], sum)
	u.pending = append([]byte(nil), b...)
	return &u, nil
}

func (u *upload) status(uploadID string) Status {
	return Status{UploadID: uploadID, BlobID: u.blobID, Offset: u.offset, Done: u.done, SHA256: u.sum}
}

// files returns the paths of the state and partial blob files of an upload.
func (us *Uploads) files(t Tenant, uploadID string) (state, part string) {
	h := sha256.New()
	h.Write(appendLenPrefixed(appendLenPrefixed(nil, t.ID), uploadID))
	name := hex.EncodeToString(h.Sum(nil)[:16])
	return filepath.Join(us.dir, name+".state"), filepath.Join(us.dir, name+".part")
}

func stateAAD(t Tenant, uploadID string) []byte {
	b := []byte("ringfence/archive upload state")
	b = appendLenPrefixed(b, t.ID)
	return appendLenPrefixed(b, uploadID)
}

// lock serialises calls on one upload; the returned func unlocks.
func (us *Uploads) lock(key string) func() {
	us.mu.Lock()
	l := us.locks[key]
	if l == nil {
		l = &uploadLock{}
		us.locks[key] = l
	}
	l.refs++
	us.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		us.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(us.locks, key)
		}
		us.mu.Unlock()
	}
}

func (us *Uploads) check(t Tenant, uploadID string) error {
	if t.Keys == nil {
		return call.Errorf(call.Invalid, "archive: no tenant keys")
	}
	return checkID("upload", uploadID)
}

// load reads an upload's state; NotFound if there is none.
func (us *Uploads) load(t Tenant, uploadID, statePath string) (*upload, error) {
	sealed, err := os.ReadFile(statePath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, call.Errorf(call.NotFound, "archive: no upload %s", uploadID)
		}
		return nil, fmt.Errorf("archive: upload %s: %w", uploadID, err)
	}
	plain, err := t.Keys.Open(sealed, stateAAD(t, uploadID))
	if err != nil {
		return nil, fmt.Errorf("archive: upload %s: state does not open: %w: %w", uploadID, ErrTampered, err)
	}
	defer clear(plain)
	u, err := unmarshalUpload(plain)
	if err != nil {
		return nil, fmt.Errorf("archive: upload %s: %w: %w", uploadID, err, ErrTampered)
	}
	return u, nil
}

// save replaces an upload's state file atomically.
func (us *Uploads) save(t Tenant, uploadID, statePath string, u *upload) error {
	plain := u.marshal()
	sealed := t.Keys.Seal(plain, stateAAD(t, uploadID))
	clear(plain)
	tmp := statePath + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("archive: upload %s: saving state: %w", uploadID, err)
	}
	_, err = f.Write(sealed)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, statePath)
	}
	if err == nil {
		err = syncDir(us.dir)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("archive: upload %s: saving state: %w", uploadID, err)
	}
	return nil
}

// Begin starts upload uploadID of tenant t into blob blobID, or, if it
// exists, returns its status (so a client that lost its place resumes from
// Status.Offset). Beginning an existing upload with another blob id is a
// Conflict.
func (us *Uploads) Begin(t Tenant, uploadID, blobID string) (Status, error) {
	if err := us.check(t, uploadID); err != nil {
		return Status{}, err
	}
	if err := checkID("blob", blobID); err != nil {
		return Status{}, err
	}
	statePath, partPath := us.files(t, uploadID)
	defer us.lock(statePath)()
	u, err := us.load(t, uploadID, statePath)
	switch {
	case err == nil && u.blobID != blobID:
		return Status{}, call.Errorf(call.Conflict, "archive: upload %s exists for another blob", uploadID)
	case err == nil:
		return u.status(uploadID), nil
	case call.ErrorCode(err) != call.NotFound:
		return Status{}, err
	}
	_, header, err := newStreamKey(t, blobID, us.chunkSize)
	if err != nil {
		return Status{}, err
	}
	f, err := os.OpenFile(partPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return Status{}, fmt.Errorf("archive: upload %s: %w", uploadID, err)
	}
	_, err = f.Write(header)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(partPath)
		return Status{}, fmt.Errorf("archive: upload %s: %w", uploadID, err)
	}
	hs, _ := sha256.New().(encoding.BinaryMarshaler).MarshalBinary()
	u = &upload{blobID: blobID, hash: hs}
	if err := us.save(t, uploadID, statePath, u); err != nil {
		os.Remove(partPath)
		return Status{}, err
	}
	return u.status(uploadID), nil
}

// Status returns the status of an upload, or NotFound.
func (us *Uploads) Status(t Tenant, uploadID string) (Status, error) {
	if err := us.check(t, uploadID); err != nil {
		return Status{}, err
	}
	statePath, _ := us.files(t, uploadID)
	defer us.lock(statePath)()
	u, err := us.load(t, uploadID, statePath)
	if err != nil {
		return Status{}, err
	}
	return u.status(uploadID), nil
}

// resumed is an upload's partial file opened for appending.
type resumed struct {
	f    *os.File
	sw   *SealWriter
	hash hash.Hash
}

// resume opens the partial file, cuts off anything written after the last
// saved state (a crash mid-append) and positions a SealWriter after it.
func (us *Uploads) resume(t Tenant, uploadID, partPath string, u *upload) (*resumed, error) {
	f, err := os.OpenFile(partPath, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("archive: upload %s: partial blob: %w", uploadID, err)
	}
	k, err := readStreamKey(f, t, u.blobID)
	if err != nil {
		f.Close()
		return nil, err
	}
	if len(u.pending) > k.chunkSize || (u.next > 0 && len(u.pending) == 0) ||
		u.offset != int64(u.next)*int64(k.chunkSize)+int64(len(u.pending)) {
		f.Close()
		return nil, fmt.Errorf("archive: upload %s: inconsistent state: %w", uploadID, ErrTampered)
	}
	end := k.headerLen + int64(u.next)*k.sealedChunk()
	fi, err := f.Stat()
	if err == nil && fi.Size() < end {
		err = fmt.Errorf("partial blob has %d bytes, state says %d: %w", fi.Size(), end, ErrTampered)
	}
	if err == nil && fi.Size() > end {
		err = f.Truncate(end)
	}
	if err == nil {
		_, err = f.Seek(end, io.SeekStart)
	}
	h := sha256.New()
	if err == nil {
		err = h.(encoding.BinaryUnmarshaler).UnmarshalBinary(u.hash)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("archive: upload %s: %w", uploadID, err)
	}
	return &resumed{f: f, sw: resumeSealWriter(f, k, u.next, u.pending, u.offset), hash: h}, nil
}

// discard removes an upload's files.
func (us *Uploads) discard(statePath, partPath string) {
	os.Remove(partPath)
	os.Remove(statePath)
	syncDir(us.dir)
}

// Append adds the bytes of r to the upload, which must be at offset (the
// Status.Offset the client last saw; otherwise Conflict, naming the
// expected offset). It reads r to its end, sealing each chunk as it fills,
// and commits what it received even when reading r fails (a dropped
// connection): the returned Status has the new offset, and the error wraps
// the read error. An upload that would exceed the size limit is removed and
// TooLarge returned. Appending to a completed upload is a Conflict.
func (us *Uploads) Append(t Tenant, uploadID string, offset int64, r io.Reader) (Status, error) {
	if err := us.check(t, uploadID); err != nil {
		return Status{}, err
	}
	statePath, partPath := us.files(t, uploadID)
	defer us.lock(statePath)()
	u, err := us.load(t, uploadID, statePath)
	if err != nil {
		return Status{}, err
	}
	if u.done {
		return u.status(uploadID), call.Errorf(call.Conflict, "archive: upload %s is complete", uploadID)
	}
	if offset != u.offset {
		return u.status(uploadID), call.Errorf(call.Conflict, "archive: upload %s is at offset %d, not %d", uploadID, u.offset, offset)
	}
	rs, err := us.resume(t, uploadID, partPath, u)
	if err != nil {
		return Status{}, err
	}
	defer rs.f.Close()

	buf := make([]byte, rs.sw.k.chunkSize)
	defer clear(buf)
	var readErr error
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if rs.sw.Size()+int64(n) > us.maxSize {
				rs.f.Close()
				us.discard(statePath, partPath)
				return Status{}, call.Errorf(call.TooLarge, "archive: upload %s exceeds %d bytes and was removed", uploadID, us.maxSize)
			}
			rs.hash.Write(buf[:n])
			if _, err := rs.sw.Write(buf[:n]); err != nil {
				return u.status(uploadID), fmt.Errorf("archive: upload %s: %w", uploadID, err)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
	}
	if err := rs.f.Sync(); err != nil {
		return u.status(uploadID), fmt.Errorf("archive: upload %s: sync: %w", uploadID, err)
	}
	hs, err := rs.hash.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return u.status(uploadID), fmt.Errorf("archive: upload %s: %w", uploadID, err)
	}
	next := &upload{blobID: u.blobID, next: rs.sw.next, offset: rs.sw.Size(), hash: hs, pending: rs.sw.buf}
	if err := us.save(t, uploadID, statePath, next); err != nil {
		return u.status(uploadID), err
	}
	if readErr != nil {
		return next.status(uploadID), fmt.Errorf("archive: upload %s: interrupted at offset %d: %w", uploadID, next.offset, readErr)
	}
	return next.status(uploadID), nil
}

// Complete seals the final chunk, checks the SHA-256 of everything
// received against sum and stores the blob under its blob id. A mismatch is
// an Invalid error and the upload is removed. Completing a completed upload
// with the same sum returns its status again (with another sum: Conflict).
// If the blob id is already taken, Conflict, and the upload stays.
func (us *Uploads) Complete(t Tenant, uploadID string, sum [sha256.Size]byte) (Status, error) {
	if err := us.check(t, uploadID); err != nil {
		return Status{}, err
	}
	statePath, partPath := us.files(t, uploadID)
	defer us.lock(statePath)()
	u, err := us.load(t, uploadID, statePath)
	if err != nil {
		return Status{}, err
	}
	if u.done {
		if u.sum != sum {
			return u.status(uploadID), call.Errorf(call.Conflict, "archive: upload %s was completed with another SHA-256", uploadID)
		}
		// A crash may have come between saving the state and storing
		// the blob.
		if part, err := os.Stat(partPath); err == nil {
			err := us.store(u.blobID, partPath)
			if call.ErrorCode(err) == call.Conflict && us.sameSize(u.blobID, part.Size()) {
				err = os.Remove(partPath) // linked into place before the crash
			}
			if err != nil {
				return u.status(uploadID), err
			}
		}
		return u.status(uploadID), nil
	}
	rs, err := us.resume(t, uploadID, partPath, u)
	if err != nil {
		return Status{}, err
	}
	defer rs.f.Close()
	var got [sha256.Size]byte
	rs.hash.Sum(got[:0])
	if got != sum {
		rs.f.Close()
		us.discard(statePath, partPath)
		return Status{}, call.Errorf(call.Invalid, "archive: upload %s: the SHA-256 of the %d bytes received differs from the one supplied; the upload was refused and removed", uploadID, u.offset)
	}
	if err := rs.sw.Close(); err != nil {
		return Status{}, fmt.Errorf("archive: upload %s: %w", uploadID, err)
	}
	if err := rs.f.Sync(); err != nil {
		return Status{}, fmt.Errorf("archive: upload %s: sync: %w", uploadID, err)
	}
	if err := rs.f.Close(); err != nil {
		return Status{}, fmt.Errorf("archive: upload %s: close: %w", uploadID, err)
	}
	done := &upload{blobID: u.blobID, done: true, next: rs.sw.next, offset: u.offset, hash: u.hash, sum: sum}
	if err := us.save(t, uploadID, statePath, done); err != nil {
		return Status{}, err
	}
	if err := us.store(u.blobID, partPath); err != nil {
		return done.status(uploadID), err
	}
	return done.status(uploadID), nil
}

// store moves a finished partial file into Blobs.
func (us *Uploads) store(blobID, partPath string) error {
	if im, ok := us.blobs.(importer); ok {
		return im.importFile(blobID, partPath)
	}
	return copyIn(us.blobs, blobID, partPath)
}

func (us *Uploads) sameSize(blobID string, size int64) bool {
	b, err := us.blobs.Open(blobID)
	if err != nil {
		return false
	}
	defer b.Close()
	return b.Size() == size
}

// Discard forgets an upload: an upload in progress is removed with its
// partial blob; for a completed one only the record of the upload goes,
// not the stored blob. NotFound if there is no such upload.
func (us *Uploads) Discard(t Tenant, uploadID string) error {
	if err := us.check(t, uploadID); err != nil {
		return err
	}
	statePath, partPath := us.files(t, uploadID)
	defer us.lock(statePath)()
	if _, err := us.load(t, uploadID, statePath); err != nil {
		return err
	}
	us.discard(statePath, partPath)
	return nil
}
