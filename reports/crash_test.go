package reports

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ccr-infuse/infuse/internal/apperr"
)

// TestWriteDirClearsTempFilesOfAKilledWriter: a writer killed with kill -9 between writing its
// temporary files and renaming them leaves them behind (the crash test of cmd/infuse found
// one); the next WriteDir into the directory must leave only the pack — and nothing else of
// the directory's is touched.
func TestWriteDirClearsTempFilesOfAKilledWriter(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, n := range []string{".claim.xlsx.tmp-2867593704", ".manifest.json.tmp-1", "notes.txt", ".other.tmp-1"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := WriteDir(t.Context(), dir, testPack(t, 3)); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	want := []string{".other.tmp-1", "claim.pdf", "claim.xlsx", "manifest.json", "notes.txt"}
	if !slices.Equal(names, want) {
		t.Errorf("the directory holds %v, want %v", names, want)
	}
}

// packDir returns the names in dir and whether its manifest vouches for its files: each listed
// file holds the bytes and hash the manifest gives.
func packDir(t *testing.T, dir string) (names []string, manifest *Manifest) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		names = append(names, e.Name())
	}
	raw, err := os.ReadFile(filepath.Join(dir, NameManifest))
	if errors.Is(err, fs.ErrNotExist) {
		return names, nil
	}
	var m Manifest
	if err != nil || json.Unmarshal(raw, &m) != nil {
		t.Fatalf("manifest.json unreadable: %v", err)
	}
	for _, mf := range m.Files {
		data, err := os.ReadFile(filepath.Join(dir, mf.Name))
		sum := sha256.Sum256(data)
		if err != nil || hex.EncodeToString(sum[:]) != mf.SHA256 {
			t.Errorf("manifest.json vouches for a %s that is not there: %v", mf.Name, err)
		}
	}
	return names, &m
}

// TestConcurrentWritersIntoOneDirectory: writers into one directory take turns, so none clears
// the temporary files of another (which failed its rename) and the directory ends with one
// whole pack.
func TestConcurrentWritersIntoOneDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	packs := make([][]File, 4)
	for i := range packs {
		files, _, err := Build(testPack(t, 3+i))
		if err != nil {
			t.Fatal(err)
		}
		packs[i] = files
	}
	var wg sync.WaitGroup
	for round := range 5 {
		for i := range packs {
			wg.Go(func() {
				if err := WriteFiles(t.Context(), dir, packs[i]); err != nil {
					t.Errorf("round %d, writer %d: %v", round, i, err)
				}
			})
		}
		wg.Wait()
	}
	names, m := packDir(t, dir)
	if !slices.Equal(names, []string{NamePDF, NameXLSX, NameManifest}) || m == nil {
		t.Errorf("the directory holds %v", names)
	}
}

// TestAFailedReplacementLeavesNoFalseManifest: a pack that cannot be written whole leaves the
// earlier pack as it was when nothing of it was replaced, and no manifest when something was,
// never a manifest vouching for files it does not describe.
func TestAFailedReplacementLeavesNoFalseManifest(t *testing.T) {
	// Not parallel: it replaces renameFile, which the parallel tests start only after it.
	older, _, err := Build(testPack(t, 3))
	if err != nil {
		t.Fatal(err)
	}
	newer, _, err := Build(testPack(t, 5))
	if err != nil {
		t.Fatal(err)
	}
	failOn := func(name string) {
		renameFile = func(from, to string) error {
			if filepath.Base(to) == name {
				return &os.LinkError{Op: "rename", Old: from, New: to, Err: syscall.EIO}
			}
			return os.Rename(from, to)
		}
	}
	defer func() { renameFile = os.Rename }()
	for _, c := range []struct {
		failing  string
		manifest bool // the old manifest is still there, with its files
	}{{NameXLSX, true}, {NamePDF, false}, {NameManifest, false}} {
		dir := t.TempDir()
		if err := WriteFiles(t.Context(), dir, older); err != nil {
			t.Fatal(err)
		}
		failOn(c.failing)
		if err := WriteFiles(t.Context(), dir, newer); err == nil {
			t.Fatalf("renaming %s failed, and WriteFiles did not say so", c.failing)
		}
		renameFile = os.Rename
		names, m := packDir(t, dir)
		if got := m != nil; got != c.manifest {
			t.Errorf("%s failed: a manifest %v, want %v; the directory holds %v", c.failing, got, c.manifest, names)
		}
		if m != nil && m.Files[0].SHA256 != older[0].SHA256 {
			t.Errorf("%s failed: the manifest is not the older pack's", c.failing)
		}
		for _, n := range names {
			if strings.Contains(n, tempInfix) {
				t.Errorf("%s failed: %s left behind", c.failing, n)
			}
		}
	}
}

// TestADirectoryNamedAsAPackFileWritesNothing: a pack file's name taken by a directory is
// refused before any file of the earlier pack is replaced.
func TestADirectoryNamedAsAPackFileWritesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	older, _, err := Build(testPack(t, 3))
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteFiles(t.Context(), dir, older); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, NamePDF)); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, NamePDF), 0o755); err != nil {
		t.Fatal(err)
	}
	newer, _, err := Build(testPack(t, 5))
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteFiles(t.Context(), dir, newer); apperr.CodeOf(err) != apperr.Invalid {
		t.Fatalf("err = %v, want invalid", err)
	}
	for _, f := range older {
		if f.Name == NamePDF {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, f.Name))
		if err != nil || !bytes.Equal(data, f.Data) {
			t.Errorf("%s of the earlier pack was replaced (%v)", f.Name, err)
		}
	}
}

// TestAWriterWaitsForTheDirectoryUntilItsContextEnds: a writer waits while another holds the
// directory, gives up with its context (Ctrl-C, a deadline) leaving the directory as it was, and
// writes once the other lets go.
func TestAWriterWaitsForTheDirectoryUntilItsContextEnds(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files, _, err := Build(testPack(t, 3))
	if err != nil {
		t.Fatal(err)
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*lockPoll)
	defer cancel()
	if err := WriteFiles(ctx, dir, files); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("writing into a held directory: %v, want the context's deadline", err)
	}
	if names, _ := packDir(t, dir); len(names) != 0 {
		t.Errorf("a writer that gave up left %v", names)
	}
	done := make(chan error, 1)
	go func() { done <- WriteFiles(t.Context(), dir, files) }()
	time.Sleep(3 * lockPoll)
	if err := syscall.Flock(int(d.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("writing once the directory is free: %v", err)
	}
	if _, m := packDir(t, dir); m == nil {
		t.Error("no manifest after the wait")
	}
}

// TestUnlockedWritersClearOnlyStaleTemps: where writers cannot take turns (a file system that
// cannot lock a directory), a temporary file may be a live writer's, so only old ones are
// cleared.
func TestUnlockedWritersClearOnlyStaleTemps(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files, _, err := Build(testPack(t, 3))
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-staleTemp - time.Minute)
	for _, n := range []string{".claim.pdf.tmp-1", ".claim.pdf.tmp-2"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(filepath.Join(dir, ".claim.pdf.tmp-1"), old, old); err != nil {
		t.Fatal(err)
	}
	if err := clearTemps(dir, files, staleTemp); err != nil {
		t.Fatal(err)
	}
	if names, _ := packDir(t, dir); !slices.Equal(names, []string{".claim.pdf.tmp-2"}) {
		t.Errorf("after clearing stale temporary files the directory holds %v", names)
	}
	// A directory that cannot be locked is written unlocked, not refused.
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	d.Close() // flock of a closed descriptor fails, as NFS's of a directory does
	if locked, err := lockDir(t.Context(), d); locked || err != nil {
		t.Errorf("lockDir of an unlockable directory: %v, %v; want false, nil", locked, err)
	}
}
