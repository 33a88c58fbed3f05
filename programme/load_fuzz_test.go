package programme_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/programme"
)

// FuzzLoad feeds arbitrary bytes to the programme-definition parser (INFUSE_PROGRAMME): it must
// never panic, refuse with invalid errors only, and whatever it accepts must survive a
// marshal and reload unchanged.
func FuzzLoad(f *testing.F) {
	def := programme.DefaultJSON()
	f.Add(def)
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"award":"NaN"}`))
	f.Add(bytes.Replace(def, []byte(`"9"`), []byte(`"0"`), 1))
	f.Add(bytes.Replace(def, []byte(`2021`), []byte(`2021-02-30`), 1))
	f.Add(bytes.Replace(def, []byte(`GB-`), []byte("GB-\xff"), 1))
	f.Add(def[:len(def)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := programme.Load(bytes.NewReader(data))
		if err != nil {
			if c := apperr.CodeOf(err); c != apperr.Invalid {
				t.Fatalf("refused with code %q, want invalid: %v", c, err)
			}
			return
		}
		again, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("an accepted programme does not marshal: %v", err)
		}
		q, err := programme.Load(bytes.NewReader(again))
		if err != nil {
			t.Fatalf("an accepted programme does not reload: %v\n%s", err, again)
		}
		if p.Fingerprint() != q.Fingerprint() {
			t.Fatalf("reload changed the programme:\n%s", again)
		}
	})
}
