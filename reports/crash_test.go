package reports

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
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
	if _, err := WriteDir(dir, testPack(t, 3)); err != nil {
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
