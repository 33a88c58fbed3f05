package claims

import (
	"bytes"
	"encoding/json"
)

// The claim figures as interfaces.md promises them (claims show --json, claims compile --json,
// GET /api/v1/claims/{period}): exactly these keys, headings and authorities in the programme's
// order, money as strings with exactly two decimals, every authority listed.

type jsonPair struct {
	Period     string `json:"period"`
	Cumulative string `json:"cumulative"`
}

type jsonMatch struct {
	Period     string `json:"period"`
	Cumulative string `json:"cumulative"`
	Target     string `json:"target"`
}

type jsonFinding struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

type jsonClaim struct {
	Period           string        `json:"period"`
	ClaimNumber      int           `json:"claim_number"`
	Status           string        `json:"status"`
	Headings         orderedObject `json:"headings"`
	TotalEligible    jsonPair      `json:"total_eligible"`
	ESFDue           jsonPair      `json:"esf_due"`
	MatchByAuthority orderedObject `json:"match_by_authority"`
	LateItems        int           `json:"late_items"`
	Findings         []jsonFinding `json:"findings"`
}

// orderedObject is a JSON object whose keys keep the order they were added in.
type orderedObject struct {
	keys   []string
	values []any
}

func (o *orderedObject) add(k string, v any) {
	o.keys = append(o.keys, k)
	o.values = append(o.values, v)
}

func (o orderedObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		vb, err := json.Marshal(o.values[i])
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func pairJSON(p Pair) jsonPair {
	return jsonPair{Period: money(p.Period), Cumulative: money(p.Cumulative)}
}

// JSONFigures returns the interfaces.md form of a claim's figures in the given status.
func JSONFigures(f *Figures, status Status) any {
	out := jsonClaim{
		Period:        f.Period,
		ClaimNumber:   f.ClaimNumber,
		Status:        string(status),
		TotalEligible: pairJSON(f.TotalEligible),
		ESFDue:        pairJSON(f.ESFDue),
		LateItems:     f.LateItems,
		Findings:      make([]jsonFinding, 0, len(f.Findings)),
	}
	for _, h := range f.Headings {
		out.Headings.add(h.Code, pairJSON(h.Pair))
	}
	for _, m := range f.Match {
		out.MatchByAuthority.add(m.Code, jsonMatch{Period: money(m.Period), Cumulative: money(m.Cumulative), Target: money(m.Target)})
	}
	for _, x := range f.Findings {
		out.Findings = append(out.Findings, jsonFinding{ID: x.ID, Severity: x.Severity, Message: x.Message})
	}
	return out
}

// MarshalJSON encodes the claim as interfaces.md promises.
func (c *Claim) MarshalJSON() ([]byte, error) {
	return json.Marshal(JSONFigures(&c.Figures, c.Status))
}
