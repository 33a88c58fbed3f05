package match

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/internal/dbtest"
)

// readAll reads a whole file through the CSV reader, as an import does, returning the header's
// problems, the rows' fields and the rows' problems.
func readAll(t testing.TB, body string, spec fileSpec) (header []RowError, rows [][]string, probs []RowError) {
	f, header, err := openCSV(strings.NewReader(body), spec)
	if err != nil {
		t.Fatalf("openCSV: %v", err)
	}
	if header != nil {
		return header, nil, nil
	}
	var rec record
	for {
		err := f.next(&rec)
		if errors.Is(err, io.EOF) {
			return nil, rows, probs
		}
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		probs = append(probs, rec.probs...)
		if rec.fields != nil {
			row := []string{}
			for _, c := range spec.required {
				row = append(row, rec.get(c))
			}
			rows = append(rows, row)
		}
	}
}

func TestCSVReader(t *testing.T) {
	t.Parallel()
	t.Run("BOMAndAnyOrderAndCase", func(t *testing.T) {
		body := "\xEF\xBB\xBFFTE,Name,authority,payroll_ref,valid_from,annual_cost\r\n0.8,Rhian Evans,GB-NWP,NWP-1,2021-04-01,44750.00\r\n"
		h, rows, probs := readAll(t, body, officersSpec)
		if h != nil || probs != nil || len(rows) != 1 || rows[0][0] != "GB-NWP" || rows[0][5] != "0.8" {
			t.Fatalf("header %v, rows %q, problems %v", h, rows, probs)
		}
	})
	t.Run("HeaderProblemsAreRow1", func(t *testing.T) {
		h, _, _ := readAll(t, "authority,payroll_ref,name,valid_from,annual_cost,fte,colour,name\n", officersSpec)
		if len(h) != 2 || h[0].Row != 1 || h[0].Rule != RuleFormat || !strings.Contains(h[0].Message, "colour") {
			t.Fatalf("header problems %v", h)
		}
		h, _, _ = readAll(t, "authority,name\n", officersSpec)
		if len(h) != 4 {
			t.Fatalf("missing columns: %v", h)
		}
		h, _, _ = readAll(t, "", officersSpec)
		if len(h) != 1 || !strings.Contains(h[0].Message, "empty") {
			t.Fatalf("empty file: %v", h)
		}
	})
	t.Run("RowsNumberedAsASpreadsheetShowsThem", func(t *testing.T) {
		// Row 3 has a quoted field over two lines; row 4 is blank (skipped but counted); row 5 is short.
		body := "heading,defrayed_on,payee,description,amount,evidence_ref\n" +
			"other,2021-06-30,Venue,Hall,100.00,R-1\n" +
			"other,2021-06-30,Venue,\"Hall,\nand tea\",100.00,R-2\n" +
			",,,,,\n" +
			"other,2021-06-30\n" +
			"other,2021-06-30,Venue,\"bad\"quote,1,R-3\n" +
			"other,2021-06-30,Venue,Hall,1,\"\xff\"\n"
		_, rows, probs := readAll(t, body, expSpec)
		if len(rows) != 2 || rows[1][3] != "Hall,\nand tea" {
			t.Fatalf("rows %q", rows)
		}
		if len(probs) != 3 || probs[0].Row != 5 || probs[1].Row != 6 || probs[2].Row != 7 {
			t.Fatalf("problems %v", probs)
		}
	})
	t.Run("EmptyLinesAreRowsToo", func(t *testing.T) {
		// The reader skips empty lines; a spreadsheet shows each as a row, so the rows after one
		// keep the numbers their lines have. A quoted field over two lines is still one row.
		body := "\n" + // row 1: empty, before the header
			"heading,defrayed_on,payee,description,amount,evidence_ref\r\n" + // row 2
			"\r\n" + // row 3
			"other,2021-06-30,Venue,Hall,100.00,R-1\n" + // row 4
			"\n\n" + // rows 5 and 6
			"other,2021-06-30\n" + // row 7: short
			"other,2021-06-30,Venue,\"Hall,\n\nand tea\",100.00,R-2\n" + // row 8, over three lines
			"\n" + // row 9
			"other,2021-06-30,Venue,\"bad\"quote,1,R-3\n" + // row 10: not valid CSV
			"\n" + // row 11
			"other,2021-06-30,Venue,\"unterminated,1,R-4\n\n" // row 12: not valid CSV to the end
		_, rows, probs := readAll(t, body, expSpec)
		if len(rows) != 2 || rows[1][3] != "Hall,\n\nand tea" {
			t.Fatalf("rows %q", rows)
		}
		var got []int64
		for _, p := range probs {
			got = append(got, p.Row)
		}
		if len(got) != 3 || got[0] != 7 || got[1] != 10 || got[2] != 12 {
			t.Fatalf("problems on rows %v, want 7, 10, 12: %v", got, probs)
		}
		h, _, _ := readAll(t, "\n\nauthority,name\n", officersSpec)
		if len(h) == 0 || h[0].Row != 3 {
			t.Fatalf("a header after two empty lines is row 3: %v", h)
		}
	})
}

// FuzzCSVReader: any bytes, read as each of the three files, never panic, and every problem
// names a row at or after the header.
func FuzzCSVReader(f *testing.F) {
	f.Add("authority,payroll_ref,work_date,hours,activity,evidence_ref,approved_by\nGB-NWP,1,2021-05-04,7.5,lab,TS,G\n")
	f.Add("\xEF\xBB\xBFheading,defrayed_on,payee,description,amount,evidence_ref,invoice_ref\r\n\"a\"\"b\",x,,,,,\n")
	f.Add("authority,payroll_ref,name,valid_from,annual_cost,fte\n\"unterminated\n")
	f.Add("a,b\n1,2,3\n\n\n")
	f.Fuzz(func(t *testing.T, body string) {
		for _, spec := range []fileSpec{officersSpec, timeSpec, expSpec} {
			h, _, probs := readAll(t, body, spec)
			for _, p := range append(h, probs...) {
				if p.Row < 1 || p.Rule == "" || p.Message == "" {
					t.Fatalf("bad problem %+v", p)
				}
			}
		}
	})
}

// TestPriceSQLMatchesGo checks that the import's SQL pricing (integer pence, exact) gives the
// same amount as Price for many random lines, half-penny cases included.
func TestPriceSQLMatchesGo(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 2000
	hours, costs, ftes := make([]decimal.Decimal, n), make([]decimal.Decimal, n), make([]decimal.Decimal, n)
	for i := range hours {
		hours[i] = decimal.New(int64(1+rng.IntN(1200)), -2)
		costs[i] = decimal.New(int64(1+rng.IntN(15_000_000)), -2)
		ftes[i] = decimal.New(int64(1+rng.IntN(10000)), -4)
	}
	hours[0], costs[0], ftes[0] = decimal.RequireFromString("0.5"), decimal.RequireFromString("17217.20"), decimal.NewFromInt(1)
	rows, err := pool.Query(context.Background(), `SELECT `+priceSQL("h", "c", "f", "$4")+`
		FROM unnest($1::numeric[], $2::numeric[], $3::numeric[]) WITH ORDINALITY AS x(h, c, f, i) ORDER BY i`, hours, costs, ftes, 1720)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	i := 0
	for rows.Next() {
		var got decimal.Decimal
		if err := rows.Scan(&got); err != nil {
			t.Fatal(err)
		}
		if want := Price(hours[i], costs[i], ftes[i], 1720); !got.Equal(want) {
			t.Fatalf("%s h at %s, FTE %s: SQL %s, Go %s", hours[i], costs[i], ftes[i], got, want)
		}
		i++
	}
	if rows.Err() != nil || i != n {
		t.Fatalf("%d rows, %v", i, rows.Err())
	}
}

// TestProblemWithANullArgument: an SQL check whose message has a NULL argument (a nullable
// column passed as it is) still reports its problem, the argument empty, rather than failing the
// whole report with an internal error (as a changed payroll line's M5 once did).
func TestProblemWithANullArgument(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE t_err (row_no bigint NOT NULL, rule text NOT NULL, key text NOT NULL, args text[] NOT NULL);
		INSERT INTO t_err VALUES (2, 'M5', 'line %s, invoice %s', ARRAY['7', NULL])`); err != nil {
		t.Fatal(err)
	}
	probs, err := collectProblems(ctx, tx, nil)
	if err != nil || len(probs) != 1 || probs[0].Message != "line 7, invoice " || len(probs[0].Args) != 2 || probs[0].Args[1] != "" {
		t.Fatalf("problems %+v, %v", probs, err)
	}
}

// TestControlIn: the control characters a record refuses (M1), and the tab, line breaks, and
// Word's line and page breaks (vertical tab, form feed) a spreadsheet's cell holds, which it keeps.
func TestControlIn(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]rune{
		"Nesta": -1, "Lab facilitation,\r\ncohort Alpha\tday 1": -1, "Siân, Caerffili £5 – ✓": -1,
		"a\x00b": 0, "Lab\vfacilitation": -1, "\x1b[2J": 0x1b, "form\ffeed": -1, "del\x7f": 0x7f, "next\u0085line": 0x85,
		"\u009f": 0x9f, "\u00a0nbsp": -1, "bell\a": '\a', "Rhian\u0092s": 0x92,
	} {
		got, ok := ControlIn(s)
		if (want < 0) == ok || ok && got != want {
			t.Errorf("ControlIn(%q) = %U, %v; want %U", s, got, ok, want)
		}
	}
}
