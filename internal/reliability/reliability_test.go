package reliability_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ccr-infuse/infuse/internal/reliability"
)

func TestRecordReadRender(t *testing.T) {
	out := filepath.Join(t.TempDir(), "figures.jsonl")
	t.Setenv(reliability.EnvOut, out)
	t.Run("first", func(t *testing.T) {
		reliability.Record(t, "b_load", "held", map[string]any{"requests": 10})
	})
	t.Run("second", func(t *testing.T) {
		reliability.Record(t, "a_crash", "nothing lost", map[string]any{"kills": 3})
	})
	t.Run("again", func(t *testing.T) {
		reliability.Record(t, "b_load", "held", map[string]any{"requests": 12})
	})
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	figs, err := reliability.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(figs) != 2 || figs[0].ID != "a_crash" || figs[1].ID != "b_load" {
		t.Fatalf("figures %+v, want a_crash then b_load", figs)
	}
	var b bytes.Buffer
	if err := reliability.Render(&b, figs); err != nil {
		t.Fatal(err)
	}
	doc := b.String()
	for _, want := range []string{"## a_crash", "| kills | 3 |", "| requests | 12 |", "TestRecordReadRender/again"} {
		if !strings.Contains(doc, want) {
			t.Errorf("the document lacks %q:\n%s", want, doc)
		}
	}
	if strings.Contains(doc, "| requests | 10 |") {
		t.Errorf("an older figure of the same id survived:\n%s", doc)
	}
}

func TestRecordWithoutFileDoesNothing(t *testing.T) {
	t.Setenv(reliability.EnvOut, "")
	reliability.Record(t, "x", "y", nil) // must not fail or write
}
