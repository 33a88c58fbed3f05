package ledger

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// TestFingerprintIsStable: fingerprints are stored with the entries they identify, and a replay
// is told from a conflict by comparing them, so the encoding may never change. These are
// fingerprints computed when the encoding was made; amounts written with more digits than pence
// fingerprint as their pence.
func TestFingerprintIsStable(t *testing.T) {
	l := &Ledger{byCode: map[string]Account{"IKE-MON": {ID: 7}, "MAT-MON": {ID: 8}}}
	for _, c := range []struct {
		in   EntryInput
		want string
	}{
		{EntryInput{EffectiveDate: time.Date(2022, 3, 31, 17, 4, 0, 0, time.UTC), Description: "officer time", Source: "time_entry",
			Reference: "42", RecordedBy: "fo@example.org", IdempotencyKey: "time:MON:1:2022-03-31",
			Postings: []Posting{{"IKE-MON", decimal.RequireFromString("123.4")}, {"MAT-MON", decimal.RequireFromString("-123.400")}}},
			"5e955d4413c741c2ded12603123ce6952f44aa5d2211f3f70a02e9f72dc1ec73"},
		{EntryInput{EffectiveDate: time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC), Description: "Cyfnod – £", Source: "claim",
			Reverses: 9, RecordedBy: "pm", IdempotencyKey: "k",
			Postings: []Posting{{"MAT-MON", decimal.RequireFromString("-0.05")}, {"IKE-MON", decimal.RequireFromString("0.02")},
				{"IKE-MON", decimal.New(3, -2)}}},
			"20f1db00f5ac3e9b79828b78e00d20c69c2e8f20f830ef4e96c7a6bed359a629"},
		{EntryInput{EffectiveDate: time.Date(2023, 12, 1, 0, 0, 0, 0, time.UTC), Description: "large", Source: "setup",
			RecordedBy: "system", IdempotencyKey: "big",
			Postings: []Posting{{"IKE-MON", decimal.RequireFromString("99999999999999.99")}, {"MAT-MON", decimal.RequireFromString("-99999999999999.990000000000000000000")}}},
			"e73f68718fe227bb95c1eb2285c132e7d8fcb60c9675b8c8ed70bbd33df4788b"},
	} {
		_, amounts, err := l.validate(&c.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(fingerprint(&c.in, amounts)); got != c.want {
			t.Errorf("fingerprint of %q = %s, want %s", c.in.IdempotencyKey, got, c.want)
		}
	}
}
