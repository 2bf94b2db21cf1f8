package archive

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/ringfence/ringfence/call"
)

// Blobs stores opaque, immutable, already-sealed blobs by id. Ids are 1 to
// 200 ASCII letters, digits, '.', '_' or '-', not starting with '.'.
// Implementations must be safe for concurrent use.
type Blobs interface {
	// Create starts a new blob. Nothing is visible under id until Commit
	// returns nil; Commit returns a *call.Error Conflict if id exists.
	Create(id string) (BlobWriter, error)
	// Open returns the blob, or a *call.Error NotFound.
	Open(id string) (Blob, error)
	// Remove deletes the blob; NotFound if there is none.
	Remove(id string) error
}

// BlobWriter receives the bytes of a new blob. Exactly one of Commit or
// Abort must be called; after Commit fails the writer is aborted.
type BlobWriter interface {
	io.Writer
	Commit() error
	Abort() error
}

// Blob is a stored blob open for random access.
type Blob interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// importer is implemented by Blobs that can take over a finished local
// file without copying it (DirBlobs, by renaming).
type importer interface {
	importFile(id, path string) error
}

// DirBlobs keeps each blob in its own file under a directory: mode 0700
// directories, 0600 files, written to a temporary file, fsynced, then
// linked into place and the directory fsynced, so a blob is either whole or
// absent after a crash. Files are spread over 256 subdirectories by the
// first byte of SHA-256(id). It is safe for concurrent use.
type DirBlobs struct {
	dir string
}

var _ Blobs = (*DirBlobs)(nil)

// OpenDirBlobs opens (creating if needed) the blob directory dir, removing
// temporary files that a crash left behind.
func OpenDirBlobs(dir string) (*DirBlobs, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("archive: blob directory: %w", err)
	}
	stale, err := os.ReadDir(filepath.Join(dir, "tmp"))
	if err != nil {
		return nil, fmt.Errorf("archive: blob directory: %w", err)
	}
	for _, e := range stale {
		os.Remove(filepath.Join(dir, "tmp", e.Name()))
	}
	return &DirBlobs{dir: dir}, nil
}

func (d *DirBlobs) path(id string) string {
	sum := sha256.Sum256([]byte(id))
	return filepath.Join(d.dir, hex.EncodeToString(sum[:1]), id)
}

// Create implements Blobs.
func (d *DirBlobs) Create(id string) (BlobWriter, error) {
	if err := checkID("blob", id); err != nil {
		return nil, err
	}
	var r [12]byte
	rand.Read(r[:])
	f, err := os.OpenFile(filepath.Join(d.dir, "tmp", hex.EncodeToString(r[:])), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("archive: creating blob: %w", err)
	}
	return &dirBlobWriter{d: d, id: id, f: f}, nil
}

type dirBlobWriter struct {
	d    *DirBlobs
	id   string
	f    *os.File
	done bool
}

func (w *dirBlobWriter) Write(p []byte) (int, error) { return w.f.Write(p) }

func (w *dirBlobWriter) Commit() error {
	if w.done {
		return errors.New("archive: blob writer already finished")
	}
	w.done = true
	name := w.f.Name()
	defer os.Remove(name)
	if err := w.f.Sync(); err != nil {
		w.f.Close()
		return fmt.Errorf("archive: blob %s: sync: %w", w.id, err)
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("archive: blob %s: close: %w", w.id, err)
	}
	return w.d.place(w.id, name)
}

func (w *dirBlobWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.f.Close()
	return os.Remove(w.f.Name())
}

// place links the synced file at path into place as blob id and removes
// path; Conflict if id exists.
func (d *DirBlobs) place(id, path string) error {
	final := d.path(id)
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return fmt.Errorf("archive: blob %s: %w", id, err)
	}
	if err := os.Link(path, final); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return call.Errorf(call.Conflict, "archive: blob %s exists", id)
		}
		return fmt.Errorf("archive: blob %s: %w", id, err)
	}
	os.Remove(path)
	if err := syncDir(filepath.Dir(final)); err != nil {
		return fmt.Errorf("archive: blob %s: %w", id, err)
	}
	return nil
}

// importFile moves the finished, synced file at path into place as blob
// id, copying it when it is on another filesystem.
func (d *DirBlobs) importFile(id, path string) error {
	if err := checkID("blob", id); err != nil {
		return err
	}
	err := d.place(id, path)
	var le *os.LinkError
	if !errors.As(err, &le) || !errors.Is(le.Err, syscall.EXDEV) {
		return err
	}
	return copyIn(d, id, path)
}

// copyIn stores the file at path as blob id through b.Create, then removes
// the file.
func copyIn(b Blobs, id, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("archive: blob %s: %w", id, err)
	}
	defer f.Close()
	w, err := b.Create(id)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, f); err != nil {
		w.Abort()
		return fmt.Errorf("archive: blob %s: copying: %w", id, err)
	}
	if err := w.Commit(); err != nil {
		return err
	}
	return os.Remove(path)
}

// Open implements Blobs.
func (d *DirBlobs) Open(id string) (Blob, error) {
	if err := checkID("blob", id); err != nil {
		return nil, err
	}
	f, err := os.Open(d.path(id))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, call.Errorf(call.NotFound, "archive: no blob %s", id)
		}
		return nil, fmt.Errorf("archive: blob %s: %w", id, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("archive: blob %s: %w", id, err)
	}
	return &fileBlob{File: f, size: fi.Size()}, nil
}

type fileBlob struct {
	*os.File
	size int64
}

func (b *fileBlob) Size() int64 { return b.size }

// Remove implements Blobs.
func (d *DirBlobs) Remove(id string) error {
	if err := checkID("blob", id); err != nil {
		return err
	}
	if err := os.Remove(d.path(id)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return call.Errorf(call.NotFound, "archive: no blob %s", id)
		}
		return fmt.Errorf("archive: blob %s: %w", id, err)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
