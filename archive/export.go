package archive

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ringfence/ringfence/call"
)

// ExportFormat names the export layout in Manifest.Format.
const ExportFormat = "ringfence-export/1"

const (
	manifestName    = "manifest.json"
	manifestSumName = "manifest.json.sha256"
	itemsDir        = "items/"
)

// Export is a regulator case export: the items selected for a case.
type Export struct {
	CaseID  string
	Created time.Time // the caller's clock
	Items   []ExportItem
}

// ExportItem is one archived item in an export.
type ExportItem struct {
	ID   string    // the item's record id
	Kind string    // for example "recording", "sms", "call"
	Time time.Time // when the call or message happened
	// File is the item's file name inside the export's items/ folder
	// (letters, digits, '.', '_', '-'); empty means ID.
	File string
	// Open returns the item's decrypted content (a *Media, for example);
	// it is read once, to its end, and closed.
	Open func() (io.ReadCloser, error)
}

// Manifest lists the items of an export. It is stored as manifest.json in
// the export, beside manifest.json.sha256 holding its SHA-256.
type Manifest struct {
	Format  string         `json:"format"`
	CaseID  string         `json:"case_id"`
	Created time.Time      `json:"created"`
	Items   []ManifestItem `json:"items"`
}

// ManifestItem describes one exported file.
type ManifestItem struct {
	ID     string    `json:"id"`
	Kind   string    `json:"kind"`
	Time   time.Time `json:"time"`
	File   string    `json:"file"`   // the name under items/
	Size   int64     `json:"size"`   // bytes
	SHA256 string    `json:"sha256"` // lowercase hex of the file's SHA-256
}

// WriteExport writes e as a zip to w: each item's decrypted content under
// items/, stored uncompressed, then manifest.json (ids, kinds, times, file
// names, sizes and SHA-256 of each file, case id, creation time) and
// manifest.json.sha256. It returns the manifest and its SHA-256 (to record
// beside the case, so a later VerifyExport can be tied to it). Items are
// streamed; none is held in memory. To store the export sealed, pass a
// SealWriter as w, or use SealExport.
func WriteExport(w io.Writer, e Export) (Manifest, [sha256.Size]byte, error) {
	m := Manifest{Format: ExportFormat, CaseID: e.CaseID, Created: e.Created.UTC(), Items: make([]ManifestItem, 0, len(e.Items))}
	seen := map[string]bool{}
	for _, it := range e.Items {
		file := it.File
		if file == "" {
			file = it.ID
		}
		if err := checkID("export file", file); err != nil {
			return Manifest{}, [32]byte{}, err
		}
		if seen[file] {
			return Manifest{}, [32]byte{}, call.Errorf(call.Invalid, "archive: export: two items named %q", file)
		}
		seen[file] = true
		if it.Open == nil {
			return Manifest{}, [32]byte{}, call.Errorf(call.Invalid, "archive: export: item %q has no content", it.ID)
		}
	}
	zw := zip.NewWriter(w)
	for _, it := range e.Items {
		file := it.File
		if file == "" {
			file = it.ID
		}
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: itemsDir + file, Method: zip.Store, Modified: it.Time.UTC()})
		if err != nil {
			return Manifest{}, [32]byte{}, fmt.Errorf("archive: export item %q: %w", it.ID, err)
		}
		rc, err := it.Open()
		if err != nil {
			return Manifest{}, [32]byte{}, fmt.Errorf("archive: export item %q: %w", it.ID, err)
		}
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(fw, h), rc)
		rc.Close()
		if err != nil {
			return Manifest{}, [32]byte{}, fmt.Errorf("archive: export item %q: %w", it.ID, err)
		}
		m.Items = append(m.Items, ManifestItem{ID: it.ID, Kind: it.Kind, Time: it.Time.UTC(), File: file,
			Size: n, SHA256: hex.EncodeToString(h.Sum(nil))})
	}
	body, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Manifest{}, [32]byte{}, fmt.Errorf("archive: export manifest: %w", err)
	}
	body = append(body, '\n')
	sum := sha256.Sum256(body)
	for _, f := range []struct {
		name string
		body []byte
	}{
		{manifestName, body},
		{manifestSumName, []byte(hex.EncodeToString(sum[:]) + "  " + manifestName + "\n")},
	} {
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: m.Created})
		if err == nil {
			_, err = fw.Write(f.body)
		}
		if err != nil {
			return Manifest{}, [32]byte{}, fmt.Errorf("archive: export %s: %w", f.name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return Manifest{}, [32]byte{}, fmt.Errorf("archive: export: %w", err)
	}
	return m, sum, nil
}

// SealExport writes e with WriteExport into a new blob of b, sealed for
// tenant t under blobID (the lead serves it decrypted through OpenMedia).
// On error nothing is stored.
func SealExport(b Blobs, t Tenant, blobID string, e Export) (Manifest, [sha256.Size]byte, error) {
	bw, err := b.Create(blobID)
	if err != nil {
		return Manifest{}, [32]byte{}, err
	}
	sw, err := NewSealWriter(bw, t, blobID, 0)
	if err != nil {
		bw.Abort()
		return Manifest{}, [32]byte{}, err
	}
	m, sum, err := WriteExport(sw, e)
	if err == nil {
		err = sw.Close()
	}
	if err != nil {
		bw.Abort()
		return Manifest{}, [32]byte{}, err
	}
	if err := bw.Commit(); err != nil {
		return Manifest{}, [32]byte{}, err
	}
	return m, sum, nil
}

// VerifyExport checks an export zip of size bytes: manifest.json is present
// and matches manifest.json.sha256, and every file under items/ is listed
// in the manifest exactly once with the listed size and SHA-256, and no
// other file is present. It returns the manifest and its SHA-256, which the
// caller should compare with the one recorded when the export was made
// (the zip alone cannot show that manifest and files were not replaced
// together). Every refusal wraps ErrTampered and names the item or file.
func VerifyExport(r io.ReaderAt, size int64) (Manifest, [sha256.Size]byte, error) {
	var none [sha256.Size]byte
	refuse := func(format string, args ...any) (Manifest, [sha256.Size]byte, error) {
		return Manifest{}, none, fmt.Errorf("archive: export refused: "+format+": %w", append(args, ErrTampered)...)
	}
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return refuse("not a readable zip (%v)", err)
	}
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		if files[f.Name] != nil {
			return refuse("file %q appears twice", f.Name)
		}
		files[f.Name] = f
	}
	body, err := readZipFile(files[manifestName], 1<<24)
	if err != nil {
		return refuse("%s: %v", manifestName, err)
	}
	sumFile, err := readZipFile(files[manifestSumName], 1024)
	if err != nil {
		return refuse("%s: %v", manifestSumName, err)
	}
	sum := sha256.Sum256(body)
	if want, _, _ := strings.Cut(strings.TrimSpace(string(sumFile)), " "); want != hex.EncodeToString(sum[:]) {
		return refuse("%s does not match %s", manifestName, manifestSumName)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return refuse("%s does not parse (%v)", manifestName, err)
	}
	if m.Format != ExportFormat {
		return refuse("%s has format %q, want %q", manifestName, m.Format, ExportFormat)
	}
	listed := map[string]bool{manifestName: true, manifestSumName: true}
	for _, it := range m.Items {
		name := itemsDir + it.File
		if listed[name] {
			return refuse("item %q: file %q listed twice", it.ID, it.File)
		}
		listed[name] = true
		f := files[name]
		if f == nil {
			return refuse("item %q: file %q is missing", it.ID, it.File)
		}
		rc, err := f.Open()
		if err != nil {
			return refuse("item %q: file %q does not open (%v)", it.ID, it.File, err)
		}
		h := sha256.New()
		n, err := io.Copy(h, rc)
		rc.Close()
		if err != nil {
			return refuse("item %q: file %q does not read (%v)", it.ID, it.File, err)
		}
		if n != it.Size {
			return refuse("item %q: file %q has %d bytes, the manifest says %d", it.ID, it.File, n, it.Size)
		}
		if hex.EncodeToString(h.Sum(nil)) != it.SHA256 {
			return refuse("item %q: file %q differs from its SHA-256 in the manifest", it.ID, it.File)
		}
	}
	for _, f := range zr.File {
		if !listed[f.Name] {
			return refuse("file %q is not in the manifest", f.Name)
		}
	}
	return m, sum, nil
}

// readZipFile reads a small zip member, at most limit bytes.
func readZipFile(f *zip.File, limit int64) ([]byte, error) {
	if f == nil {
		return nil, errors.New("missing")
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("over %d bytes", limit)
	}
	return b, nil
}
