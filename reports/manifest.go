package reports

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/durable"
)

// Manifest records what a claim pack holds and where in the ledger it was compiled from, so
// that an auditor can check that the files they hold are the ones submitted. Its JSON form is
// part of the interface auditors rely on: fields are only ever added.
type Manifest struct {
	Operation        string         `json:"operation"`
	Period           string         `json:"period"`
	PeriodStart      string         `json:"period_start"` // YYYY-MM-DD
	PeriodEnd        string         `json:"period_end"`   // YYYY-MM-DD, inclusive
	ClaimNumber      int            `json:"claim_number"`
	Position         ManifestLedger `json:"ledger_position"`
	GeneratorVersion string         `json:"generator_version"`
	CompiledAt       time.Time      `json:"compiled_at"`
	Files            []ManifestFile `json:"files"`
	// ClaimStatus is the claim's status the pack was rendered for (draft, reviewed or
	// submitted), as its documents show it. Added after the fields above, so it comes last.
	ClaimStatus string `json:"claim_status"`
}

// ManifestLedger is the ledger position in the manifest.
type ManifestLedger struct {
	EntriesSealed int64  `json:"entries_sealed"`
	LastEntryID   int64  `json:"last_entry_id"`
	ChainLink     string `json:"chain_link"` // hex SHA-256 chain link of the last entry
}

// ManifestFile is one file of the pack.
type ManifestFile struct {
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"` // lower-case hex
}

// NewManifest returns the manifest of p listing files.
func NewManifest(p *Pack, files ...ManifestFile) Manifest {
	return Manifest{
		Operation:   p.Operation.ID,
		Period:      p.Period.Code,
		PeriodStart: dateText(p.Period.Start),
		PeriodEnd:   dateText(p.Period.End),
		ClaimNumber: p.ClaimNumber,
		Position: ManifestLedger{
			EntriesSealed: p.Position.EntriesSealed,
			LastEntryID:   p.Position.LastEntryID,
			ChainLink:     p.Position.ChainLink,
		},
		GeneratorVersion: p.generator(),
		CompiledAt:       p.CompiledAt.UTC(),
		Files:            append([]ManifestFile(nil), files...),
		ClaimStatus:      p.Status,
	}
}

// WriteManifest writes m as indented JSON with a trailing newline. Field order is the struct's.
func WriteManifest(w io.Writer, m Manifest) error {
	if m.Files == nil {
		m.Files = []ManifestFile{} // [] rather than null
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return apperr.Wrap("reports.WriteManifest", err)
	}
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return apperr.Wrap("reports.WriteManifest", err)
	}
	return nil
}

// File is one rendered file of a pack.
type File struct {
	Name   string // claim.xlsx, claim.pdf or manifest.json
	Data   []byte
	SHA256 string // lower-case hex
}

// Entry returns f as the manifest lists it.
func (f File) Entry() ManifestFile {
	return ManifestFile{Name: f.Name, Bytes: int64(len(f.Data)), SHA256: f.SHA256}
}

func newFile(name string, data []byte) File {
	sum := sha256.Sum256(data)
	return File{Name: name, Data: data, SHA256: hex.EncodeToString(sum[:])}
}

// Build renders the pack of p: claim.xlsx, claim.pdf and manifest.json, in that order, with
// their hashes, and the manifest it wrote. The manifest lists the workbook and the PDF.
func Build(p *Pack) ([]File, Manifest, error) {
	if err := p.Validate(); err != nil {
		return nil, Manifest{}, err
	}
	var pdfBuf bytes.Buffer
	if err := writePDF(&pdfBuf, p); err != nil {
		return nil, Manifest{}, err
	}
	pdf := newFile(NamePDF, pdfBuf.Bytes())
	var xlsxBuf bytes.Buffer
	if err := writeXLSX(&xlsxBuf, p, pdf.Entry()); err != nil {
		return nil, Manifest{}, err
	}
	xlsx := newFile(NameXLSX, xlsxBuf.Bytes())
	m := NewManifest(p, xlsx.Entry(), pdf.Entry())
	var mBuf bytes.Buffer
	if err := WriteManifest(&mBuf, m); err != nil {
		return nil, Manifest{}, err
	}
	return []File{xlsx, pdf, newFile(NameManifest, mBuf.Bytes())}, m, nil
}

// WriteDir writes the pack of p into dir (created if missing) as claim.xlsx, claim.pdf and
// manifest.json, and returns the manifest, as WriteFiles writes them.
func WriteDir(ctx context.Context, dir string, p *Pack, waiting func()) (Manifest, error) {
	files, m, err := Build(p)
	if err != nil {
		return Manifest{}, err
	}
	if err := WriteFiles(ctx, dir, files, waiting); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// NameLock is the lock file by which writers of a pack into one directory take turns. It is
// there only while one writes (or after a writer was killed, until the next one).
const NameLock = ".claim-pack.lock"

// WriteFiles writes the files of a pack (as Build returns them, or as they were stored) into
// dir, created if missing, replacing the files of an earlier pack whole. A reader never sees a
// half-written file, and manifest.json never vouches for files other than its own:
//   - writers into one directory take turns, by an exclusive flock on its lock file (NameLock,
//     opened for writing, so that NFS locks it too), released also when a writer dies. The
//     wait ends with ctx; waiting, if not nil, is called once if it has to wait. So a temporary
//     file a writer finds is that of a writer killed before it renamed it (kill -9, power
//     loss), and it clears it. The lock file is removed when the writer is done;
//   - a pack file's name taken by a directory is refused before anything is written;
//   - each file is written to a temporary name, synced, and renamed into place, with the old
//     manifest moved aside first and the new one renamed in last, and the directory is synced.
//
// An error leaves no temporary file behind; if it comes after a data file was replaced, the
// directory is left without a manifest rather than with one that does not match.
func WriteFiles(ctx context.Context, dir string, files []File, waiting func()) error {
	if len(files) == 0 {
		return apperr.Wrap("reports.WriteFiles", errors.New("a pack of no files"))
	}
	files = slices.Clone(files)
	slices.SortStableFunc(files, func(a, b File) int { return lastIfManifest(a) - lastIfManifest(b) })
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return dirError(dir, err)
	}
	unlock, err := lockDir(ctx, dir, waiting)
	if err != nil {
		return err
	}
	defer unlock()
	if err := clearTemps(dir, files); err != nil {
		return dirError(dir, err)
	}
	for _, f := range files {
		if fi, err := os.Lstat(filepath.Join(dir, f.Name)); err == nil && fi.IsDir() {
			return dirError(dir, &fs.PathError{Op: "write", Path: filepath.Join(dir, f.Name), Err: syscall.EISDIR})
		}
	}
	var leftovers []string // removed on return: after a successful rename, nothing is there
	defer func() {
		for _, t := range leftovers {
			_ = os.Remove(t)
		}
	}()
	temps := make([]string, len(files))
	for i, f := range files {
		t, err := writeTemp(dir, f)
		if t != "" {
			temps[i] = t
			leftovers = append(leftovers, t)
		}
		if err != nil {
			return dirError(dir, err)
		}
	}
	// The old manifest goes aside, to a temporary name (removed on return, or by the next writer
	// if this one dies), and comes back only if no data file was replaced.
	manifest := filepath.Join(dir, NameManifest)
	aside := temps[len(temps)-1] + "-old"
	movedAside := false
	switch err := os.Rename(manifest, aside); {
	case err == nil:
		movedAside = true
		leftovers = append(leftovers, aside)
	case !errors.Is(err, fs.ErrNotExist):
		return dirError(dir, err)
	}
	for i, f := range files {
		if err := renameFile(temps[i], filepath.Join(dir, f.Name)); err != nil {
			if i == 0 && movedAside {
				if rerr := os.Rename(aside, manifest); rerr != nil {
					err = errors.Join(err, rerr)
				}
			}
			return dirError(dir, err)
		}
	}
	if err := durable.SyncDir(dir); err != nil {
		return dirError(dir, err)
	}
	return nil
}

// renameFile and flock are os.Rename and syscall.Flock; the tests make them fail.
var (
	renameFile = os.Rename
	flock      = syscall.Flock
)

// tempInfix marks the temporary files of WriteFiles: .NAME.tmp-…
const tempInfix = ".tmp-"

// lastIfManifest orders the manifest after the files it vouches for.
func lastIfManifest(f File) int {
	if f.Name == NameManifest {
		return 1
	}
	return 0
}

// lockPoll is how often lockDir tries again for a lock another writer holds.
const lockPoll = 20 * time.Millisecond

// lockDir takes the lock of dir, an exclusive flock on its lock file, trying every lockPoll until
// it is free or ctx ends, and calls waiting (if not nil) the first time it finds it held. unlock
// removes the lock file and then lets it go: a writer that opened it before then finds, once it
// holds it, that it is no longer the file of that name, and tries again.
func lockDir(ctx context.Context, dir string, waiting func()) (unlock func(), err error) {
	path := filepath.Join(dir, NameLock)
	for told := false; ; {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, dirError(dir, err)
		}
		err = flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			held, herr := f.Stat()
			named, nerr := os.Stat(path)
			if herr == nil && nerr == nil && os.SameFile(held, named) {
				return func() {
					_ = os.Remove(path)
					_ = f.Close()
				}, nil
			}
		}
		_ = f.Close()
		switch {
		case err == nil, errors.Is(err, syscall.EINTR): // the file was replaced: try the new one
		case errors.Is(err, syscall.EWOULDBLOCK):
			if !told && waiting != nil {
				waiting()
			}
			told = true
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(lockPoll):
			}
		default: // nobody can hold a lock here, so the file is nobody's
			_ = os.Remove(path)
			return nil, &apperr.Error{Code: apperr.Invalid, Rule: apperr.RuleResources, Op: "reports.WriteFiles", Err: err,
				Message: fmt.Sprintf("cannot write the claim pack into %s: its file system cannot lock %s, which keeps two writers apart", dir, NameLock)}
		}
	}
}

// clearTemps removes the temporary files that a writer killed mid-write left in dir. Only
// WriteFiles's names are touched: .NAME.tmp-… of a pack file's NAME.
func clearTemps(dir string, files []File) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		for _, f := range files {
			if strings.HasPrefix(e.Name(), "."+f.Name+tempInfix) {
				if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			}
		}
	}
	return nil
}

// dirError is how WriteFiles reports a failure to write into dir: one the person who named dir
// can fix (it is a file, missing from a path, not theirs to write, on a full or read-only
// disk; a pack file's name is taken by a directory) with a message saying so, anything else as
// an internal error.
func dirError(dir string, err error) error {
	var reason string
	switch {
	case errors.Is(err, fs.ErrPermission):
		reason = "permission denied"
	case errors.Is(err, syscall.ENOTDIR):
		reason = "it, or a directory above it, is a file"
	case errors.Is(err, fs.ErrNotExist):
		reason = "a directory above it does not exist"
	case errors.Is(err, syscall.EISDIR), errors.Is(err, fs.ErrExist):
		reason = "a directory there has the name of a pack file"
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		reason = "no space left on the device"
	case errors.Is(err, syscall.EROFS):
		reason = "the file system is read-only"
	default:
		return apperr.Wrap("reports.WriteFiles", err)
	}
	return &apperr.Error{Code: apperr.Invalid, Rule: apperr.RuleResources, Op: "reports.WriteFiles", Err: err,
		Message: fmt.Sprintf("cannot write the claim pack into %s: %s", dir, reason)}
}

// writeTemp writes f to a new temporary file in dir, syncs and closes it, and returns its name
// (also on error, once the file exists, so that the caller removes it).
func writeTemp(dir string, f File) (string, error) {
	t, err := os.CreateTemp(dir, "."+f.Name+tempInfix+"*")
	if err != nil {
		return "", err
	}
	_, werr := t.Write(f.Data)
	if werr == nil {
		werr = t.Chmod(0o644)
	}
	if werr == nil {
		werr = t.Sync()
	}
	if cerr := t.Close(); werr == nil {
		werr = cerr
	}
	return t.Name(), werr
}

// digestOf renders a file into a hash and returns its manifest entry.
func digestOf(name string, render func(io.Writer) error) (ManifestFile, error) {
	h := sha256.New()
	cw := &countWriter{w: h}
	if err := render(cw); err != nil {
		return ManifestFile{}, err
	}
	return ManifestFile{Name: name, Bytes: cw.n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}
