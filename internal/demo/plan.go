package demo

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/ccr-infuse/infuse/match"
	"github.com/ccr-infuse/infuse/programme"
)

// The plan is the whole demo as plain values, made from the seed alone, before anything is
// recorded: so the same seed always gives the same data, and the recording is a separate step
// that goes through the same imports a finance team uses.

var (
	firstNames = []string{"Rhian", "Gareth", "Sioned", "Dafydd", "Cerys", "Owain", "Ffion", "Rhys", "Elin", "Iwan",
		"Carys", "Huw", "Bethan", "Geraint", "Nia", "Aled", "Lowri", "Emyr", "Angharad", "Tomos", "Megan", "Osian",
		"Catrin", "Dylan", "Mared", "Gethin", "Seren", "Llŷr", "Eleri", "Sion", "Ceri", "Ieuan", "Manon", "Alun",
		"Heledd", "Rhodri", "Gwenllian", "Ifan", "Delyth", "Steffan", "Sarah", "James", "Emma", "Daniel", "Laura",
		"Michael", "Rachel", "Mark", "Claire", "Paul", "Hannah", "Chris", "Amy", "Matthew", "Zainab", "Imran", "Priya"}
	surnames = []string{"Evans", "Jones", "Williams", "Davies", "Thomas", "Roberts", "Lewis", "Hughes", "Morgan",
		"Griffiths", "Edwards", "Owen", "Price", "Jenkins", "Rees", "Powell", "Lloyd", "Phillips", "Morris", "James",
		"Parry", "Pritchard", "Bowen", "Howells", "Watkins", "Harries", "Bevan", "Prosser", "Vaughan", "Pugh",
		"Llewellyn", "Rowlands", "Gwynne", "Meredith", "Probert", "Ahmed", "Khan", "Begum", "Smith", "Taylor"}
	jobTitles = []string{"Service Manager", "Team Leader", "Policy Officer", "Senior Practitioner", "Commissioning Officer",
		"Project Officer", "Business Partner", "Customer Services Manager", "Housing Officer", "Community Development Officer",
		"Data Analyst", "Digital Services Lead", "Occupational Therapist", "Social Worker", "Planning Officer"}
)

// domains are the authorities' email domains.
var domains = map[string]string{
	"GB-BGW": "blaenau-gwent.gov.uk", "GB-BGE": "bridgend.gov.uk", "GB-CAY": "caerphilly.gov.uk",
	"GB-CRF": "cardiff.gov.uk", "GB-MTY": "merthyr.gov.uk", "GB-MON": "monmouthshire.gov.uk",
	"GB-NWP": "newport.gov.uk", "GB-RCT": "rctcbc.gov.uk", "GB-TOF": "torfaen.gov.uk", "GB-VGL": "valeofglamorgan.gov.uk",
}

// financeOfficers names each authority's finance officer (who imports its officers and time).
// Monmouthshire's, Huw Jenkins, is also the programme's finance lead and reviews the claims.
var financeOfficers = map[string]string{
	"GB-BGW": "Carys Prosser", "GB-BGE": "Rhodri Bevan", "GB-CAY": "Sioned Harries", "GB-CRF": "Dai Pritchard",
	"GB-MTY": "Lowri Vaughan", "GB-MON": "Huw Jenkins", "GB-NWP": "Rhian Evans", "GB-RCT": "Emyr Howells",
	"GB-TOF": "Nia Probert", "GB-VGL": "Geraint Meredith",
}

// The lead beneficiary's people.
var (
	managerName = "Siân Morgan"
	adminName   = "Gwen Powell"
	auditorName = "Alun Watkins"
)

type officerPlan struct {
	authority, ref, name, manager string
	cohort                        int
	versions                      []match.OfficerInput
}

type timePlan struct {
	officer int // index in plan.officers
	in      match.TimeInput
	late    bool // the timesheet arrives after its quarter's claim
}

type expPlan struct {
	in match.ExpenditureInput
}

// correctionPlan is a timesheet keyed with the wrong hours, reversed and recorded again.
type correctionPlan struct {
	officer int
	wrong   match.TimeInput
	right   match.TimeInput
	reason  string
}

type plan struct {
	officers    []officerPlan
	time        []timePlan
	expenditure []expPlan
	correction  correctionPlan
}

// cohortStarts are the four six-month cohorts from May 2021.
var cohortStarts = []time.Time{
	programme.Date(2021, 5, 1), programme.Date(2021, 11, 1), programme.Date(2022, 5, 1), programme.Date(2022, 11, 1),
}

// lastWorkDay is when participation ends: experiments run until the programme closes.
var lastWorkDay = programme.Date(2023, 12, 15)

func makePlan(p *programme.Programme, seed uint64) *plan {
	rng := rand.New(rand.NewPCG(seed, 0x696e66757365))
	pl := &plan{}
	pl.makeOfficers(p, rng)
	pl.makeTime(rng)
	pl.makeExpenditure(p, rng)
	return pl
}

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

// pence returns a random amount between lo and hi pounds, in pence.
func pence(rng *rand.Rand, lo, hi int) decimal.Decimal {
	return decimal.New(int64(lo*100+rng.IntN((hi-lo)*100+1)), -2)
}

// makeOfficers: about 120 officers, three per authority in each of the four cohorts, with a rate
// version from the April before they join and a pay award every April after.
func (pl *plan) makeOfficers(p *programme.Programme, rng *rand.Rand) {
	used := map[string]bool{}
	for c := range cohortStarts {
		for _, a := range p.Authorities {
			for i := 0; i < 3; i++ {
				var name string
				for name == "" || used[name] || name == financeOfficers[a.Code] {
					name = pick(rng, firstNames) + " " + pick(rng, surnames)
				}
				used[name] = true
				var ref string
				for ref == "" || used[ref] {
					ref = fmt.Sprintf("%s-%06d", a.Code[3:], 100000+rng.IntN(900000))
				}
				used[ref] = true
				manager := ""
				for manager == "" || manager == name || manager == financeOfficers[a.Code] {
					manager = pick(rng, firstNames) + " " + pick(rng, surnames)
				}
				o := officerPlan{authority: a.Code, ref: ref, name: name, manager: manager, cohort: c}
				// Salary from NJC grades: £24k–£52k; AGEC adds employer NIC and pension (27–31%).
				salary := decimal.NewFromInt(int64(24000 + rng.IntN(28001)))
				agec := salary.Mul(decimal.New(int64(127+rng.IntN(5)), -2)).Round(2)
				fte := decimal.NewFromInt(1)
				if rng.IntN(5) == 0 {
					fte = pick(rng, []decimal.Decimal{decimal.RequireFromString("0.8"), decimal.RequireFromString("0.74"),
						decimal.RequireFromString("0.6"), decimal.RequireFromString("0.5")})
				}
				for y := cohortStarts[c].Year() - boolInt(cohortStarts[c].Month() < time.April); y <= 2023; y++ {
					o.versions = append(o.versions, match.OfficerInput{Authority: a.Code, PayrollRef: ref, Name: name,
						ValidFrom: programme.Date(y, time.April, 1), AnnualCost: agec, FTE: fte})
					// The April pay award: 4–6.5%, pence and all.
					agec = agec.Mul(decimal.New(int64(1040+rng.IntN(26)), -3)).Round(2)
				}
				pl.officers = append(pl.officers, o)
			}
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// isHoliday: no labs over Christmas and New Year or in the first three weeks of August.
func isHoliday(d time.Time) bool {
	m, day := d.Month(), d.Day()
	return (m == time.December && day >= 20) || (m == time.January && day <= 3) || (m == time.August && day <= 21)
}

// makeTime: each officer's lab day a week for the six months of the cohort, an experiment day
// most weeks, monthly coaching, and after the cohort experiment days until the programme closes;
// one officer per authority sits on the quarterly steering group. A few timesheets arrive late.
func (pl *plan) makeTime(rng *rand.Rand) {
	for i, o := range pl.officers {
		start := cohortStarts[o.cohort]
		end := start.AddDate(0, 6, 0)
		labDay := time.Weekday(2 + o.cohort%3) // Tuesday, Wednesday, Thursday, Tuesday
		expDay := time.Weekday(1 + (o.cohort+2)%4)
		if expDay == labDay {
			expDay = time.Friday
		}
		ts := func(d time.Time) string {
			return fmt.Sprintf("TS-%s-%s-%03d", d.Format("2006-01"), o.authority[3:], i+1)
		}
		add := func(d time.Time, hours decimal.Decimal, activity string) {
			if d.After(lastWorkDay) || isHoliday(d) {
				return
			}
			in := match.TimeInput{Authority: o.authority, PayrollRef: o.ref, WorkDate: d, Hours: hours, Activity: activity,
				EvidenceRef: ts(d), ApprovedBy: o.manager}
			if activity == "lab" || activity == "steering" {
				in.EvidenceRef = fmt.Sprintf("REG-%s-C%d", d.Format("2006-01-02"), o.cohort+1) // the attendance register
				in.ApprovedBy = o.manager
			}
			pl.time = append(pl.time, timePlan{officer: i, in: in, late: rng.IntN(40) == 0})
		}
		partTime := o.versions[0].FTE.LessThan(decimal.NewFromInt(1))
		for d := start; d.Before(end); d = d.AddDate(0, 0, 1) {
			switch {
			case d.Weekday() == labDay && rng.IntN(10) < 9:
				h := decimal.RequireFromString(pick(rng, []string{"7", "7.25", "7.5", "7.5"}))
				if partTime {
					h = decimal.RequireFromString("6")
				}
				add(d, h, "lab")
			case d.Weekday() == expDay && rng.IntN(20) < 17:
				add(d, decimal.RequireFromString(pick(rng, []string{"3.5", "5", "6", "7", "7.5"})), "experiment")
			case d.Day() <= 7 && d.Weekday() == time.Friday:
				add(d, decimal.RequireFromString(pick(rng, []string{"1", "1.5", "2"})), "coaching")
			}
		}
		// After the cohort: experiments in their own services, about one day a fortnight.
		for d := end; !d.After(lastWorkDay); d = d.AddDate(0, 0, 1) {
			if d.Weekday() == expDay && rng.IntN(100) < 72 {
				add(d, decimal.RequireFromString(pick(rng, []string{"3.5", "5", "6", "7", "7.5"})), "experiment")
			}
		}
		if o.cohort == 0 && i%3 == 0 { // the first officer of each authority's first cohort
			for q := programme.Date(2021, 6, 15); q.Before(lastWorkDay); q = q.AddDate(0, 3, 0) {
				d := q
				for d.Weekday() != time.Monday {
					d = d.AddDate(0, 0, 1)
				}
				add(d, decimal.RequireFromString("3"), "steering")
			}
		}
	}
	sort.SliceStable(pl.time, func(a, b int) bool { return pl.time[a].in.WorkDate.Before(pl.time[b].in.WorkDate) })
	// One timesheet keyed with the wrong hours: Newport's first officer's second lab.
	for _, t := range pl.time {
		if pl.officers[t.officer].authority == "GB-NWP" && t.in.Activity == "lab" && !t.late {
			if pl.correction.wrong.Authority != "" {
				break
			}
			if t.in.WorkDate.Before(programme.Date(2021, 5, 10)) {
				continue
			}
			right := t.in
			wrong := right
			wrong.Hours = right.Hours.Sub(decimal.RequireFromString("0.25"))
			pl.correction = correctionPlan{officer: t.officer, wrong: wrong, right: right,
				reason: "keyed as " + wrong.Hours.String() + " hours; the register shows " + right.Hours.String()}
		}
	}
}

// programme team of the lead beneficiary, paid monthly: the direct staff costs.
var team = []struct {
	name, role string
	agec       int
}{
	{"Siân Morgan", "Programme Manager", 68000},
	{"Owain Davies", "Programme Officer", 52000},
	{"Ffion Rees", "Programme Officer", 51500},
	{"Elin Bowen", "Lab Coordinator", 50000},
	{"Huw Jenkins", "Finance and Monitoring Officer", 46000},
	{"Mared Lloyd", "Communications Officer", 42000},
	{"Tomos Pugh", "Programme Administrator", 32500},
}

func monthEnd(y int, m time.Month) time.Time {
	d := programme.Date(y, m+1, 0)
	for d.Weekday() == time.Saturday || d.Weekday() == time.Sunday {
		d = d.AddDate(0, 0, -1)
	}
	return d
}

// makeExpenditure: salaries monthly, quarterly delivery invoices from Y Lab, Cardiff University
// and Nesta (paid the month after the quarter), an evaluation contract, venues, travel and
// materials, and one credit note.
func (pl *plan) makeExpenditure(p *programme.Programme, rng *rand.Rand) {
	add := func(heading string, d time.Time, payee, desc string, amount decimal.Decimal, evidence, invoice string) {
		pl.expenditure = append(pl.expenditure, expPlan{match.ExpenditureInput{Heading: heading, DefrayedOn: d, Payee: payee,
			Description: desc, Amount: amount, EvidenceRef: evidence, InvoiceRef: invoice}})
	}
	agecs := make([]decimal.Decimal, len(team))
	for i, m := range team {
		agecs[i] = decimal.NewFromInt(int64(m.agec))
	}
	for y := 2021; y <= 2023; y++ {
		for m := time.January; m <= time.December; m++ {
			if m == time.April && y > 2021 {
				for i := range agecs {
					agecs[i] = agecs[i].Mul(decimal.New(int64(1040+rng.IntN(20)), -3)).Round(2)
				}
			}
			d := monthEnd(y, m)
			for i, t := range team {
				if y == 2021 && m < time.March && i >= 4 { // the team grew in the spring of 2021
					continue
				}
				add(programme.HeadingStaff, d, "Monmouthshire County Council payroll",
					fmt.Sprintf("Salary and on-costs, %s %d: %s, %s", m, y, t.name, t.role),
					agecs[i].Div(decimal.NewFromInt(12)).Round(2), fmt.Sprintf("PAY-%d-%02d-%02d", y, int(m), i+1), "")
			}
			// Venues, catering, travel and materials for the month's labs.
			if y == 2021 && m < time.May {
				add(programme.HeadingOther, programme.Date(y, m, 20), "Tramshed Tech, Cardiff", fmt.Sprintf("Programme launch and partner workshops, %s %d", m, y),
					pence(rng, 1800, 3200), fmt.Sprintf("RCP-%d-%02d-V", y, int(m)), fmt.Sprintf("TT-%d%02d", y, int(m)))
				continue
			}
			if d.After(lastWorkDay) {
				continue
			}
			add(programme.HeadingOther, programme.Date(y, m, 18), pick(rng, []string{"Tramshed Tech, Cardiff", "Y Lab Space, Cardiff University",
				"Newport Centre", "Merthyr Tydfil Leisure Trust", "Bridgend Life Centre"}),
				fmt.Sprintf("Lab venue hire and catering, %s %d", m, y), pence(rng, 5500, 9500), fmt.Sprintf("RCP-%d-%02d-V", y, int(m)),
				fmt.Sprintf("V-%d%02d%03d", y, int(m), rng.IntN(1000)))
			add(programme.HeadingOther, monthEnd(y, m), "Expense claims (programme team)", fmt.Sprintf("Travel between authorities, %s %d", m, y),
				pence(rng, 900, 2200), fmt.Sprintf("EXP-%d-%02d", y, int(m)), "")
			if m%3 == 0 {
				add(programme.HeadingOther, programme.Date(y, m, 10), "Calon Print Ltd", fmt.Sprintf("Lab materials and printing, quarter to %s %d", m, y),
					pence(rng, 2500, 5500), fmt.Sprintf("INV-CP-%d%02d", y, int(m)), fmt.Sprintf("CP%d%02d", y%100, int(m)))
			}
		}
	}
	// Delivery partners invoice each quarter; the lead pays in the month after.
	partners := []struct {
		payee, prefix, what string
		lo, hi              int
	}{
		{"Y Lab (Cardiff University and Nesta)", "YL", "Innovation lab design and facilitation", 78000, 90000},
		{"Nesta", "NE", "Experimentation coaching and learning programme", 58000, 68000},
		{"Cardiff University", "CU", "Academic input, evidence reviews and accreditation", 30000, 38000},
	}
	var cuInvoices []expPlan
	for _, q := range p.Periods() {
		paid := q.End.AddDate(0, 0, 24+rng.IntN(10))
		if paid.After(p.WindowEnd) {
			paid = programme.Date(2023, 12, 20) // the last quarter is paid before the window closes
		}
		if q.Start.Before(programme.Date(2021, 4, 1)) {
			continue
		}
		for _, pt := range partners {
			no := fmt.Sprintf("%s-%d%d", pt.prefix, q.Start.Year()%100, (int(q.Start.Month())-1)/3+1)
			add(programme.HeadingDelivery, paid, pt.payee, fmt.Sprintf("%s, %s", pt.what, q.Code), pence(rng, pt.lo, pt.hi),
				"INV-"+no, no)
			if pt.prefix == "CU" {
				cuInvoices = append(cuInvoices, pl.expenditure[len(pl.expenditure)-1])
			}
		}
	}
	// The independent evaluation, in two stages.
	add(programme.HeadingDelivery, programme.Date(2022, 9, 28), "Wavehill Ltd", "Interim evaluation of the programme", decimal.RequireFromString("38500.00"), "INV-WH-2201", "WH2201")
	add(programme.HeadingDelivery, programme.Date(2023, 12, 8), "Wavehill Ltd", "Final evaluation of the programme", decimal.RequireFromString("46250.00"), "INV-WH-2302", "WH2302")
	// Cardiff University credits a workshop cancelled in the spring of 2022.
	inv := cuInvoices[4]
	add(programme.HeadingDelivery, inv.in.DefrayedOn.AddDate(0, 1, 3), "Cardiff University",
		"Credit note: evidence workshop cancelled, "+inv.in.Description[len(inv.in.Description)-6:],
		decimal.RequireFromString("-4800.00"), "CN-"+inv.in.InvoiceRef, inv.in.InvoiceRef)
	sort.SliceStable(pl.expenditure, func(a, b int) bool {
		return pl.expenditure[a].in.DefrayedOn.Before(pl.expenditure[b].in.DefrayedOn)
	})
}

// PlanDigest returns the SHA-256 of the data the demo would record for seed: the same seed
// always gives the same digest (the tests check it).
func PlanDigest(p *programme.Programme, seed uint64) [32]byte {
	pl := makePlan(p, seed)
	h := sha256.New()
	for _, o := range pl.officers {
		fmt.Fprintln(h, o.authority, o.ref, o.name, o.manager, o.cohort)
		for _, v := range o.versions {
			fmt.Fprintln(h, v.ValidFrom, v.AnnualCost, v.FTE)
		}
	}
	for _, t := range pl.time {
		fmt.Fprintln(h, t.officer, t.in, t.late)
	}
	for _, x := range pl.expenditure {
		fmt.Fprintln(h, x.in)
	}
	fmt.Fprintln(h, pl.correction.officer, pl.correction.wrong, pl.correction.right, pl.correction.reason)
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}
