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
	"sync/atomic"
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
	if _, err := WriteDir(t.Context(), dir, testPack(t, 3), nil); err != nil {
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
				if err := WriteFiles(t.Context(), dir, packs[i], nil); err != nil {
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
		if err := WriteFiles(t.Context(), dir, older, nil); err != nil {
			t.Fatal(err)
		}
		failOn(c.failing)
		if err := WriteFiles(t.Context(), dir, newer, nil); err == nil {
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
	if err := WriteFiles(t.Context(), dir, older, nil); err != nil {
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
	if err := WriteFiles(t.Context(), dir, newer, nil); apperr.CodeOf(err) != apperr.Invalid {
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
// directory's lock, says so once, gives up with its context (Ctrl-C, a deadline) leaving the
// directory as it was, and writes once the other lets go.
func TestAWriterWaitsForTheDirectoryUntilItsContextEnds(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files, _, err := Build(testPack(t, 3))
	if err != nil {
		t.Fatal(err)
	}
	other, err := os.OpenFile(filepath.Join(dir, NameLock), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	var told atomic.Int32
	waiting := func() { told.Add(1) }
	ctx, cancel := context.WithTimeout(t.Context(), 5*lockPoll)
	defer cancel()
	if err := WriteFiles(ctx, dir, files, waiting); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("writing into a held directory: %v, want the context's deadline", err)
	}
	if names, _ := packDir(t, dir); !slices.Equal(names, []string{NameLock}) {
		t.Errorf("a writer that gave up left %v (the other writer's lock file only, want)", names)
	}
	if told.Load() != 1 {
		t.Errorf("the writer said it was waiting %d times, want once", told.Load())
	}
	done := make(chan error, 1)
	go func() { done <- WriteFiles(t.Context(), dir, files, nil) }()
	time.Sleep(3 * lockPoll)
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("writing once the directory is free: %v", err)
	}
	if _, m := packDir(t, dir); m == nil {
		t.Error("no manifest after the wait")
	}
}

// TestALockThatFailsRefusesTheWrite: where the lock cannot be taken (a file system without
// locks: ENOLCK), writers could not take turns, so the pack is refused with a reason rather than
// written unguarded.
func TestALockThatFailsRefusesTheWrite(t *testing.T) {
	// Not parallel: it replaces flock, which the parallel tests start only after it.
	flock = func(int, int) error { return syscall.ENOLCK }
	defer func() { flock = syscall.Flock }()
	dir := t.TempDir()
	files, _, err := Build(testPack(t, 3))
	if err != nil {
		t.Fatal(err)
	}
	err = WriteFiles(t.Context(), dir, files, nil)
	if apperr.CodeOf(err) != apperr.Invalid || !strings.Contains(apperr.Public(err), "its file system cannot lock "+NameLock) {
		t.Errorf("writing where nothing can be locked: %v", err)
	}
	if names, _ := packDir(t, dir); len(names) != 0 {
		t.Errorf("the refused writer left %v", names)
	}
}
