// Package hostile holds the hostile CSV files the resilience tests send through the imports: the
// wrong types, 10,000-digit numbers, NaN and Inf, zero and negative hours, impossible dates,
// mixed and invalid encodings, very long fields and formula text a careless or malicious user
// might upload, each with the rule that must refuse it. The CLI's hostile-input test sends them
// through `infuse import`, and the import fuzz test starts from them.
package hostile

import (
	"strings"
	"unicode/utf16"
)

// CSV is one hostile file and the rule its first rejected row must name.
type CSV struct {
	Name string // what is wrong with it
	Kind string // officers, time or expenditure
	Body string
	Rule string
}

// Officers records the one officer the time files name (GB-NWP, NWP-1, Rhian Evans). A test
// imports it before sending the files, so that each is refused for what is wrong with it.
const Officers = "authority,payroll_ref,name,valid_from,annual_cost,fte\nGB-NWP,NWP-1,Rhian Evans,2021-01-01,44750.00,0.8\n"

const (
	timeHeader = "authority,payroll_ref,work_date,hours,activity,evidence_ref,approved_by"
	expHeader  = "heading,defrayed_on,payee,description,amount,evidence_ref,invoice_ref"
	offHeader  = "authority,payroll_ref,name,valid_from,annual_cost,fte"
)

var good = map[string]map[string]string{
	"time": {"authority": "GB-NWP", "payroll_ref": "NWP-1", "work_date": "2021-05-04", "hours": "7.25", "activity": "lab",
		"evidence_ref": "TS-1", "approved_by": "Gareth Morgan"},
	"expenditure": {"heading": "delivery", "defrayed_on": "2021-06-30", "payee": "Nesta", "description": "Lab facilitation",
		"amount": "100.00", "evidence_ref": "INV-1", "invoice_ref": "1"},
	"officers": {"authority": "GB-NWP", "payroll_ref": "NWP-2", "name": "Dai Jones", "valid_from": "2021-01-01",
		"annual_cost": "39000.00", "fte": "1"},
}

var headers = map[string]string{"time": timeHeader, "expenditure": expHeader, "officers": offHeader}

// File returns a file of kind with one good row whose field is set to v, quoted as a
// spreadsheet would quote it.
func File(kind, field, v string) string {
	row := good[kind]
	var b strings.Builder
	b.WriteString(headers[kind] + "\n")
	for i, c := range strings.Split(headers[kind], ",") {
		if i > 0 {
			b.WriteByte(',')
		}
		x := row[c]
		if c == field {
			x = v
		}
		if strings.ContainsAny(x, ",\"\n\r") {
			x = `"` + strings.ReplaceAll(x, `"`, `""`) + `"`
		}
		b.WriteString(x)
	}
	return b.String() + "\n"
}

// CSVs returns every hostile file.
func CSVs() []CSV {
	var out []CSV
	add := func(name, kind, body, rule string) {
		out = append(out, CSV{Name: name, Kind: kind, Body: body, Rule: rule})
	}
	field := func(kind, f, v, rule string) { add(kind+" "+f+" "+describe(v), kind, File(kind, f, v), rule) }

	for _, h := range []string{"NaN", "Inf", "-Infinity", "-7.25", "0", "0.00", "-0.01", "12.01", "7.255", "1e3", "0x10", "seven", "", "７.２５"} {
		field("time", "hours", h, "V3")
	}
	field("time", "hours", strings.Repeat("9", 10000), "M1")
	for _, d := range []string{"2021-02-30", "2021-13-01", "2021-00-10", "21-05-04", "2021/05/04", "04/05/2021", "2021-05-04T00:00:00Z", "0000-00-00", "9999999-01-01"} {
		field("time", "work_date", d, "M1")
	}
	field("time", "approved_by", "Si\xf4n", "M1")                   // invalid UTF-8
	field("time", "approved_by", "Siân \xe9vans", "M1")             // Latin-1 mixed with UTF-8
	field("time", "evidence_ref", "TS\x001", "M1")                  // NUL
	field("time", "evidence_ref", strings.Repeat("x", 1<<20), "M1") // a 1 MB field
	field("time", "activity", "<script>alert(1)</script>", "M2")
	field("time", "authority", "../../etc/passwd", "M2")
	add("time UTF-16", "time", utf16LE(File("time", "", "")), "M1")
	add("time unknown column", "time", "rate,"+File("time", "", ""), "M1")
	add("time not CSV", "time", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "M1")

	for _, a := range []string{"NaN", "Inf", "1e5", "1,000.00", "£7.00", "1.001"} {
		field("expenditure", "amount", a, "R9.1")
	}
	field("expenditure", "amount", strings.Repeat("1", 10000), "M1")
	field("expenditure", "heading", "=cmd|' /C calc'!A0", "M2")
	field("expenditure", "defrayed_on", "2021-02-30", "M1")
	field("expenditure", "payee", "Nes\x00ta", "M1")
	field("expenditure", "description", "Lab\afacilitation", "M1") // a bell
	field("expenditure", "payee", "\x1b[2J\x1b[HNesta", "M1")      // an escape sequence that clears a terminal
	field("officers", "name", "Rhian\u0092s Evans", "M1")          // ’ read from Windows-1252 as Latin-1

	field("officers", "fte", "NaN", "R5.1")
	field("officers", "fte", "0", "R5.1")
	field("officers", "fte", "1.5", "R5.1")
	field("officers", "annual_cost", "-1.00", "R5.1")
	field("officers", "valid_from", "2021-02-29", "M1")
	return out
}

// describe names a field's value for a case name, briefly.
func describe(v string) string {
	switch {
	case v == "":
		return "empty"
	case len(v) > 20:
		return strings.ToValidUTF8(v[:8], "?") + "…"
	}
	return strings.ToValidUTF8(v, "?")
}

// utf16LE is s as a Windows "Unicode" text file: UTF-16, little-endian, with its byte-order mark.
func utf16LE(s string) string {
	b := []byte{0xff, 0xfe}
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return string(b)
}
