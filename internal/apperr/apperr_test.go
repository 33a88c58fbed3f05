package apperr

import (
	"errors"
	"testing"
)

func TestPublicInAnotherLanguage(t *testing.T) {
	cy := map[string]string{
		"%s (%s) may not %s":                    "ni chaiff %s (%s) wneud hyn: %s",
		"auditor":                               "archwilydd",
		"read claims":                           "darllen hawliadau",
		"fte: %s":                               "fte: %s",
		"FTE %s is too large":                   "mae'r CALl %s yn rhy fawr",
		"%s":                                    "%s",
		"internal error":                        "gwall mewnol",
		"a user with this email exists already": "mae defnyddiwr â'r cyfeiriad e-bost hwn yn bodoli eisoes",
		"the pack of %s has no %s":              "nid oes %[2]s ym mhecyn %[1]s",
	}
	c := func(k string) (string, bool) { v, ok := cy[k]; return v, ok }
	refusal := New(Forbidden, "A1", "%s (%s) may not %s", "a@b.example", Phrase("auditor"), Phrase("read claims"))
	nested := New(Invalid, "R5.1", "fte: %s", TextOf(New(Invalid, "R5.1", "FTE %s is too large", "12")))
	joined := New(Invalid, "V3", "%s", Texts{TextOf(nested), {Key: "unknown %s", Args: []any{"x"}, Message: "unknown x"}})
	for _, tc := range []struct {
		err       error
		en, welsh string
	}{
		{refusal, "A1: a@b.example (auditor) may not read claims", "A1: ni chaiff a@b.example (archwilydd) wneud hyn: darllen hawliadau"},
		{nested, "R5.1: fte: FTE 12 is too large", "R5.1: fte: mae'r CALl 12 yn rhy fawr"},
		// A message without a Welsh template stays as made.
		{joined, "V3: fte: FTE 12 is too large; unknown x", "V3: fte: mae'r CALl 12 yn rhy fawr; unknown x"},
		{New(NotFound, "", "the pack of %s has no %s", "2021Q1", "claim.pdf"), "the pack of 2021Q1 has no claim.pdf", "nid oes claim.pdf ym mhecyn 2021Q1"},
		{Wrap("x", errors.New("disk on fire")), "internal error", "gwall mewnol"},
		{&Error{Code: Conflict, Rule: "A2", Message: "a user with this email exists already"}, "A2: a user with this email exists already",
			"A2: mae defnyddiwr â'r cyfeiriad e-bost hwn yn bodoli eisoes"},
		{errors.New("plain"), "internal error", "gwall mewnol"},
	} {
		if got := Public(tc.err); got != tc.en {
			t.Errorf("Public: %q, want %q", got, tc.en)
		}
		if got := PublicIn(tc.err, c); got != tc.welsh {
			t.Errorf("PublicIn: %q, want %q", got, tc.welsh)
		}
	}
}
