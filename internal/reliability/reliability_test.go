package reliability_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccr-infuse/infuse/internal/reliability"
)

func TestRecordReadRender(t *testing.T) {
	out := filepath.Join(t.TempDir(), "figures.jsonl")
	t.Setenv(reliability.EnvOut, out)
	t.Run("first", func(t *testing.T) {
		reliability.Record(t, "b_load", "held", map[string]any{"requests": 10})
	})
	t.Run("second", func(t *testing.T) {
		reliability.Record(t, "a_crash", "nothing lost", map[string]any{"kills": 3, "backup_bytes": 2_000_000,
			"inputs": 40, "random_claims": 2, "partial_states": 0, "mismatches": 1})
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
	for _, want := range []string{"## a_crash", "| kills | 3 |", "| requests | 12 |", "TestRecordReadRender/again",
		"| backup_bytes | 2000000 |", // as recorded, not 2e+06
		"| [a_crash](#a_crash) | — | 3 | 42 | 1 |", "| [b_load](#b_load) | 12 | — | — | — |"} {
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

func TestLatency(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // 1 ms … 100 ms, out of order
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	if got, want := reliability.Latency(ds), "n=100 p50=50ms p90=90ms p99=99ms max=100ms"; got != want {
		t.Errorf("Latency = %q, want %q", got, want)
	}
	if ds[0] != 100*time.Millisecond {
		t.Error("Latency sorted its caller's slice")
	}
	if got, want := reliability.Latency([]time.Duration{1500 * time.Microsecond}), "n=1 p50=2ms p90=2ms p99=2ms max=2ms"; got != want {
		t.Errorf("Latency of one = %q, want %q", got, want)
	}
	if got := reliability.Latency(nil); got != "n=0" {
		t.Errorf("Latency of none = %q", got)
	}
}
