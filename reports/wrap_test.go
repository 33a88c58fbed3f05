package reports

import (
	"bytes"
	"strings"
	"testing"

	"github.com/jung-kurt/gofpdf"
	"golang.org/x/image/font/gofont/goregular"
)

// TestWrapBreaksReferencesBetweenTheirParts: a reference too long for its column breaks after a
// separator (TS-2021-05-|NWP-0117), not inside a part, and never beyond the column; a token with
// no separator breaks where the column ends; words break at spaces.
func TestWrapBreaksReferencesBetweenTheirParts(t *testing.T) {
	t.Parallel()
	f := gofpdf.New("P", "mm", "A4", "")
	f.AddUTF8FontFromBytes(font, "", bytes.Clone(goregular.TTF))
	f.SetFont(font, "", 7)
	d := &doc{f: f}
	w := f.GetStringWidth("TS-2021-05-NWP") + 2 // a column the reference does not fit
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"TS-2021-05-NWP-0117", []string{"TS-2021-05-", "NWP-0117"}},
		{"INV/2021/88213/NESTA/CARDIFF", []string{"INV/2021/88213/", "NESTA/CARDIFF"}},
		{"Lab facilitation cohort", []string{"Lab facilitation", "cohort"}},
	} {
		if got := d.wrap(c.in, w); strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("wrap(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	long := strings.Repeat("A", 60) + "-" + strings.Repeat("B", 60)
	lines := d.wrap(long, w)
	if strings.Join(lines, "") != long || len(lines) < 3 {
		t.Fatalf("wrap of a long token: %q", lines)
	}
	for _, l := range lines {
		if f.GetStringWidth(l) > w-2 {
			t.Errorf("line %q is wider than its column", l)
		}
	}
}
