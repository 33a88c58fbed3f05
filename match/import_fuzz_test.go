package match_test

import (
	"flag"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/internal/hostile"
	"github.com/ccr-infuse/infuse/internal/reliability"
	"github.com/ccr-infuse/infuse/match"
)

// importKinds are the three files, by the fuzzer's kind byte.
var importKinds = []string{"officers", "time", "expenditure"}

// FuzzImportIsAllOrNothing drives whole CSV imports of fuzzed content into a real database,
// starting from the hostile table's files and from good ones. Every import either succeeds —
// writing exactly the lines it says it wrote, the trial balance zero and the ledger verifying —
// or is refused as invalid with its problems listed row by row and nothing written: the row
// counts of every table an import touches are the same before and after.
func FuzzImportIsAllOrNothing(f *testing.F) {
	fx := newFixture(f)
	fx.officers(f, strings.Split(strings.TrimSpace(hostile.Officers), "\n")[1])
	kindOf := map[string]uint8{}
	for i, k := range importKinds {
		kindOf[k] = uint8(i)
		f.Add(uint8(i), hostile.File(k, "", "")) // a good file of each kind
	}
	for _, h := range hostile.CSVs() {
		f.Add(kindOf[h.Kind], h.Body)
	}
	f.Add(kindOf["time"], timeHeader+"GB-NWP,NWP-1,2021-05-05,7.25,lab,TS-2,G M\nGB-NWP,NWP-1,2021-05-05,7.25,coaching,TS-3,G M\n")
	f.Add(kindOf["expenditure"], "heading,defrayed_on,payee,description,amount,evidence_ref,invoice_ref\n"+
		"other,2021-06-30,Venue,Hall,-50.00,CN-1,1\n")

	var inputs, accepted, refused, rowsWrittenByRefused atomic.Int64
	f.Cleanup(func() {
		// Figures come from the seed run (make test, make reliability), not from a fuzzing
		// worker, which sees only its share of the inputs.
		if fz := flag.Lookup("test.fuzz"); fz != nil && fz.Value.String() != "" {
			return
		}
		rep, err := fx.l.Verify(fx.ctx)
		if err != nil {
			f.Fatal(err)
		}
		reliability.Record(f, "fuzz_import", "whole CSV imports of hostile and fuzzed files into a real database are all or nothing: accepted ones write what they report and the ledger verifies, refused ones list their rows' problems and write nothing",
			map[string]any{"inputs": inputs.Load(), "accepted": accepted.Load(), "refused_with_row_problems": refused.Load(),
				"rows_written_by_refused": rowsWrittenByRefused.Load(), "ledger_entries_verified": rep.Entries,
				"ledger_problems": len(rep.Problems)})
	})
	f.Fuzz(func(t *testing.T, kind uint8, body string) {
		k := importKinds[int(kind)%len(importKinds)]
		inputs.Add(1)
		before := fx.tableRows(t)
		var res match.ImportResult
		var err error
		opts := match.ImportOptions{Name: k + ".csv"}
		switch k {
		case "officers":
			res, err = fx.s.ImportOfficers(fx.ctx, fx.pm, strings.NewReader(body), opts)
		case "time":
			res, err = fx.s.ImportTime(fx.ctx, fx.pm, strings.NewReader(body), opts)
		default:
			res, err = fx.s.ImportExpenditure(fx.ctx, fx.pm, strings.NewReader(body), opts)
		}
		after := fx.tableRows(t)
		if err != nil {
			refused.Add(1)
			for table, n := range after {
				if n != before[table] {
					rowsWrittenByRefused.Add(n - before[table])
					t.Errorf("a refused %s import changed %s from %d to %d rows", k, table, before[table], n)
				}
			}
			ie := match.AsImportError(err)
			if apperr.CodeOf(err) != apperr.Invalid || ie == nil || len(ie.Rows) == 0 {
				t.Fatalf("a refused %s import is not invalid with row problems: %s %v", k, apperr.CodeOf(err), err)
			}
			for _, p := range ie.Rows {
				if p.Row < 1 || p.Rule == "" || p.Message == "" {
					t.Fatalf("a refused %s import reports a problem without row, rule or message: %+v", k, p)
				}
			}
			return
		}
		accepted.Add(1)
		lines := map[string]string{"officers": "rate_version", "time": "time_entry", "expenditure": "expenditure"}[k]
		if got := after[lines] - before[lines]; got != res.Written {
			t.Fatalf("a %s import reports %d written, %s grew by %d", k, res.Written, lines, got)
		}
		posted := res.Written
		if k == "officers" {
			posted = 0
		}
		if got := after["entry"] - before["entry"]; got != posted {
			t.Fatalf("a %s import of %d lines posted %d entries", k, res.Written, got)
		}
		var tb string
		if err := fx.pool.QueryRow(fx.ctx, `SELECT coalesce(sum(amount), 0)::numeric(16,2)::text FROM posting`).Scan(&tb); err != nil {
			t.Fatal(err)
		}
		if tb != "0.00" {
			t.Fatalf("after a %s import the trial balance is %s", k, tb)
		}
		if _, err := fx.l.Seal(fx.ctx); err != nil {
			t.Fatal(err)
		}
		if rep, err := fx.l.Verify(fx.ctx); err != nil || !rep.OK() {
			t.Fatalf("after a %s import the ledger does not verify: %+v %v", k, rep.Problems, err)
		}
	})
}

// tableRows counts the rows of every table an import writes.
func (f *fixture) tableRows(t testing.TB) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, table := range []string{"entry", "posting", "seal_queue", "officer", "rate_version", "time_entry", "expenditure", "import_run"} {
		out[table] = int64(f.count(t, table))
	}
	return out
}
