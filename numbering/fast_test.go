package numbering

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/nyaruka/phonenumbers"

	"github.com/ringfence/ringfence/call"
)

// testFast is the fast parser the differential tests share, so each plan
// is compiled once per test binary.
var testFast = sync.OnceValue(newFastParser)

// agreement compares the fast path with Parse (libphonenumber) on a set of
// inputs: every input the fast path handles must give exactly Parse's
// result, and every disagreement is a test failure naming the input.
type agreement struct {
	t    *testing.T
	f    *fastParser
	name string

	inputs    int // checked
	prepared  int // reached a parser (not withheld, not rejected by prepare)
	handled   int // of those, answered by the fast path
	disagreed int
}

func newAgreement(t *testing.T, name string) *agreement {
	return &agreement{t: t, f: testFast(), name: name}
}

// check compares the two paths on raw read in region and reports whether
// the fast path handled it.
func (a *agreement) check(raw, region string) bool {
	a.t.Helper()
	return a.compare(raw, region, func() call.Number { return Parse(raw, region) })
}

// checkParsed is check when Parse(raw, region) is known already.
func (a *agreement) checkParsed(raw, region string, parsed call.Number) bool {
	a.t.Helper()
	return a.compare(raw, region, func() call.Number { return parsed })
}

func (a *agreement) compare(raw, region string, slow func() call.Number) bool {
	a.t.Helper()
	a.inputs++
	n, s, ok := prepare(raw)
	if !ok {
		return false
	}
	a.prepared++
	got, ok := a.f.parse(n, s, region)
	if !ok {
		return false
	}
	a.handled++
	if want := slow(); got != want {
		a.disagreed++
		if a.disagreed <= 50 {
			a.t.Errorf("%s: Parse(%q, %q)\nfast %+v\nslow %+v", a.name, raw, region, got, want)
		}
	}
	return true
}

// report logs the coverage of the fast path and fails on disagreements.
func (a *agreement) report() {
	a.t.Helper()
	if a.disagreed > 0 {
		a.t.Errorf("%s: %d disagreements (first 50 listed)", a.name, a.disagreed)
	}
	a.t.Logf("%s: %d inputs, %d reach a parser, fast path handles %d (%.2f%%), falls back on %d; %d disagreements",
		a.name, a.inputs, a.prepared, a.handled, 100*float64(a.handled)/float64(max(1, a.prepared)), a.prepared-a.handled, a.disagreed)
}

// fastCases are inputs the fast path must handle that found mistakes in
// earlier versions of it.
var fastCases = []struct{ raw, region string }{
	// The home country code without '+' in a region that is not its
	// country code's main one: the national prefix is then stripped with
	// the main region's (GB's, AU's) metadata.
	{"44003957912", "IM"},
	{"4400071481881", "JE"},
	{"611832261705941", "CX"},
	// NANP: fixed and mobile patterns coincide; trunk prefix; local-only.
	{"+1 684 733 1234", "US"},
	{"1 (264) 235-1234", "AI"},
	{"2351234", "AI"},
	// Transform rules (a regexp national prefix).
	{"01534 456789", "JE"},
	{"456789", "JE"},
	{"0 11 96123 4567", "BR"},
	{"011 15 2345 6789", "AR"},
	// After '+', no country code: libphonenumber retries without the
	// '+', where only the home region's international prefix gives one.
	{"+0441212345678", "GB"},
	{"+00441212345678", "GB"},
	{"+011 44 121 234 5678", "US"},
	{"+0011 44 121 234 5678", "AU"},
	{"+00 99 123", "GB"},
	{"+999123456", "GB"},
	{"+0441212345678", "ZZ"},
	// Viability: two digits only without separators; IDD then too little.
	{"12", "GB"}, {"(12", "GB"}, {"12)", "GB"}, {"1 2", "GB"}, {"+12", "GB"},
	{"123", "GB"}, {"+123", "GB"}, {"0044", "GB"}, {"00441", "GB"}, {"+4", "GB"},
	{"12", "ZZ"}, {"+441212345678", "001"}, {"+80012345678", "001"},
}

func TestFastPathParseCases(t *testing.T) {
	a := newAgreement(t, "parse cases")
	for _, tc := range parseCases {
		a.check(tc.raw, tc.region)
	}
	for _, c := range fastCases {
		if !a.check(c.raw, c.region) {
			t.Errorf("fast path fell back on %q in %s", c.raw, c.region)
		}
	}
	a.report()
	if a.handled != a.prepared {
		t.Errorf("fast path fell back on %d of the cases", a.prepared-a.handled)
	}
	// And through a Normaliser, which takes the fast path on a miss.
	n := New(0)
	for _, c := range fastCases {
		if got, want := n.Number(c.raw, c.region), Parse(c.raw, c.region); got != want {
			t.Errorf("Number(%q, %q) = %+v, Parse gives %+v", c.raw, c.region, got, want)
		}
	}
}

// TestFastPathPlans checks every numbering plan in the metadata compiles,
// so no region falls back for want of a plan.
func TestFastPathPlans(t *testing.T) {
	f := newFastParser()
	states := 0
	for r, lp := range f.regions {
		p := lp.get()
		if p == nil {
			t.Errorf("region %s: plan does not compile", r)
			continue
		}
		states += len(p.dfa.accept)
	}
	for cc := range phonenumbers.GetSupportedCallingCodes() {
		c := f.codes[cc]
		if c == nil {
			t.Errorf("+%d: no calling code entry", cc)
			continue
		}
		for i, lp := range c.plans {
			if lp.get() == nil {
				t.Errorf("+%d %s: plan does not compile", cc, c.regions[i])
			}
		}
	}
	t.Logf("%d region plans, %d automaton states in all", len(f.regions), states)
}

// TestFastPathConcurrentFirstUse compiles plans from many goroutines at
// once (run it with -race).
func TestFastPathConcurrentFirstUse(t *testing.T) {
	f := newFastParser()
	raws := []struct{ raw, region string }{
		{"+441212345678", "GB"}, {"07400 123456", "GB"}, {"+12015550123", "GB"},
		{"2015550123", "US"}, {"+33123456789", "DE"}, {"0033123456789", "FR"},
		{"+16135550123", "IE"}, {"+447781123456", "JE"}, {"+80012345678", "NL"},
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range raws {
				r := raws[(i+g)%len(raws)]
				n, s, _ := prepare(r.raw)
				got, ok := f.parse(n, s, r.region)
				if !ok {
					t.Errorf("%q in %s fell back", r.raw, r.region)
				} else if want := Parse(r.raw, r.region); got != want {
					t.Errorf("%q in %s: fast %+v, slow %+v", r.raw, r.region, got, want)
				}
			}
		})
	}
	wg.Wait()
}

// exampleRow is a row of the example-number file.
type exampleRow struct {
	region, typ, national, e164 string
	valid                       bool // expected_valid
}

func readExamples(t *testing.T) []exampleRow {
	t.Helper()
	f, err := os.Open(exampleNumbersCSV)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("shared test data %s not found; skipping", exampleNumbersCSV)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	header, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	for _, name := range []string{"region", "type", "national_number", "e164", "expected_valid"} {
		if _, ok := col[name]; !ok {
			t.Fatalf("%s: no column %q", exampleNumbersCSV, name)
		}
	}
	var rows []exampleRow
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		valid, err := strconv.ParseBool(strings.TrimSpace(rec[col["expected_valid"]]))
		if err != nil {
			t.Fatalf("row %d: expected_valid: %v", len(rows)+1, err)
		}
		rows = append(rows, exampleRow{rec[col["region"]], rec[col["type"]], rec[col["national_number"]], rec[col["e164"]], valid})
	}
	return rows
}

// TestFastPathExampleNumbers compares the paths on libphonenumber's example
// number of every type in every region, in E.164 form and in the national
// form of its region, and in a few more forms a front end sees.
func TestFastPathExampleNumbers(t *testing.T) {
	t.Parallel()
	rows := readExamples(t)
	e164 := newAgreement(t, "examples, E.164 in own region")
	national := newAgreement(t, "examples, national format in own region")
	more := newAgreement(t, "examples, other forms")
	for _, row := range rows {
		e164.check(row.e164, row.region)
		pn, err := phonenumbers.Parse(row.e164, row.region)
		if err != nil {
			t.Errorf("%s: %v", row.e164, err)
			continue
		}
		nat := phonenumbers.Format(pn, phonenumbers.NATIONAL)
		national.check(nat, row.region)
		if raceEnabled {
			continue // libphonenumber is slow under -race: two forms are enough
		}
		more.check(digitsOf(nat), row.region)
		more.check(row.national, row.region)
		more.check(row.e164, "GB")
		more.check(row.e164, "US")
		more.check(phonenumbers.Format(pn, phonenumbers.INTERNATIONAL), row.region)
		more.check(phonenumbers.FormatOutOfCountryCallingNumber(pn, "GB"), "GB")
		more.check(phonenumbers.FormatOutOfCountryCallingNumber(pn, "US"), "US")
		more.check(phonenumbers.FormatOutOfCountryCallingNumber(pn, "AU"), "AU")
		more.check(strings.TrimPrefix(row.e164, "+"), row.region)
	}
	e164.report()
	national.report()
	more.report()
	if e164.inputs < 1000 {
		t.Errorf("only %d rows read from %s", e164.inputs, exampleNumbersCSV)
	}
}

func digitsOf(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// fuzzRegions are the default regions of the random and fuzz tests: home
// regions with plain and awkward national and international prefixes,
// regions sharing a country code without being its main region, and
// invalid ones.
var fuzzRegions = []string{
	"GB", "US", "FR", "DE", "IE", "NL", "JE", "IN", "BR", "AU", "IT",
	"GG", "IM", "CA", "CX", "AR", "MX", "RU", "", "ZZ", "001",
}

// randomNumber returns a random raw number read in region: digits of
// length 4 to 17 (half of them starting with the digits of a real number
// of some region) after '+' and a country code, the region's or another
// exit code and a country code, the region's national prefix, the region's
// country code without '+' (and perhaps its national prefix), or nothing;
// or '+' and random digits; sometimes with separators.
func randomNumber(r *rand.Rand, region string, examples []exampleRow) string {
	var body []byte
	n := 4 + r.IntN(14)
	if len(examples) > 0 && r.IntN(2) == 0 {
		ex := examples[r.IntN(len(examples))]
		keep := r.IntN(len(ex.national) + 1)
		body = append(body, ex.national[:keep]...)
	}
	for len(body) < n {
		body = append(body, byte('0'+r.IntN(10)))
	}
	body = body[:n]
	cc := strconv.Itoa(max(1, phonenumbers.GetCountryCodeForRegion(fuzzRegions[r.IntN(len(fuzzRegions))])))
	np := phonenumbers.GetNddPrefixForRegion(region, true)
	if np == "" {
		np = "0"
	}
	var raw string
	switch r.IntN(8) {
	case 0, 1:
		raw = "+" + cc + string(body)
	case 2:
		raw = "00" + cc + string(body)
	case 3:
		idd := []string{"011", "0011", "0014", "810", "00"}[r.IntN(5)]
		raw = idd + cc + string(body)
	case 4:
		raw = np + string(body)
	case 5:
		home := strconv.Itoa(max(1, phonenumbers.GetCountryCodeForRegion(region)))
		if r.IntN(2) == 0 {
			home += np
		}
		raw = home + string(body)
	case 6:
		raw = "+" + string(body)
	default:
		raw = string(body)
	}
	if r.IntN(5) == 0 { // separators
		var b strings.Builder
		for i := 0; i < len(raw); i++ {
			if i > 0 && r.IntN(4) == 0 {
				b.WriteByte(" -.()"[r.IntN(5)])
			}
			b.WriteByte(raw[i])
		}
		raw = b.String()
	}
	return raw
}

// TestFastPathRandom compares the paths on random numbers in several home
// regions (deterministic seed).
func TestFastPathRandom(t *testing.T) {
	t.Parallel()
	count := 200_000
	if testing.Short() || raceEnabled {
		count = 3_000
	}
	var examples []exampleRow
	if _, err := os.Stat(exampleNumbersCSV); err == nil {
		examples = readExamples(t)
	}
	r := rand.New(rand.NewPCG(20251211, 1))
	a := newAgreement(t, "random numbers")
	byRegion := map[string]*agreement{}
	for range count {
		region := fuzzRegions[r.IntN(len(fuzzRegions))]
		raw := randomNumber(r, region, examples)
		ra := byRegion[region]
		if ra == nil {
			ra = &agreement{t: t, f: a.f, name: "random numbers in " + strconv.Quote(region)}
			byRegion[region] = ra
		}
		ra.inputs++
		n, s, ok := prepare(raw)
		if ok {
			ra.prepared++
			if _, ok := a.f.parse(n, s, region); ok {
				ra.handled++
			}
		}
		a.check(raw, region)
	}
	a.report()
	for _, region := range fuzzRegions {
		if ra := byRegion[region]; ra != nil {
			t.Logf("%s: fast path handles %d of %d (%.1f%%)", ra.name, ra.handled, ra.prepared, 100*float64(ra.handled)/float64(max(1, ra.prepared)))
		}
	}
}

// FuzzFastPath asserts the fast path gives Parse's result for whatever it
// handles. The region is picked from fuzzRegions so the fuzzer works on
// the number.
func FuzzFastPath(f *testing.F) {
	for i, tc := range parseCases {
		f.Add(tc.raw, uint8(i))
	}
	for i, raw := range []string{
		"+447400123456", "07400 123456", "0044 7400 123456", "447400123456", "4407400123456",
		"+1 (201) 555-0123", "12015550123", "011 44 121 234 5678", "+55 11 96123 4567",
		"0 11 96123 4567", "0014 55 11 96123 4567", "+61 2 1234 5678", "0011 44 121 234 5678",
		"01534 456789", "456789", "+390612345678", "+80012345678", "+0044", "00", "0 0 0",
	} {
		f.Add(raw, uint8(i))
	}
	fp := newFastParser()
	f.Fuzz(func(t *testing.T, raw string, ri uint8) {
		region := fuzzRegions[int(ri)%len(fuzzRegions)]
		// raw as it is, and turned into something prepare accepts (most
		// random strings are not plausible numbers).
		for _, raw := range []string{raw, plausibleForm(raw)} {
			n, s, ok := prepare(raw)
			if !ok {
				continue
			}
			if got, ok := fp.parse(n, s, region); ok {
				if want := Parse(raw, region); got != want {
					t.Fatalf("Parse(%q, %q)\nfast %+v\nslow %+v", raw, region, got, want)
				}
			}
		}
	})
}

// plausibleForm maps raw onto the characters plausible accepts: digits
// stay, a leading '+' stays, anything else becomes a separator.
func plausibleForm(raw string) string {
	b := []byte(raw[:min(len(raw), MaxRaw)])
	for i, c := range b {
		if c >= '0' && c <= '9' || c == '+' && i == 0 {
			continue
		}
		b[i] = " -.()"[c%5]
	}
	return string(b)
}

// benchRaws returns n distinct raw numbers of one form.
func benchRaws(n int, form func(i int) string) []string {
	raws := make([]string, n)
	for i := range raws {
		raws[i] = form(i)
	}
	return raws
}

var benchForms = []struct {
	name, region string
	form         func(i int) string
}{
	{"gb-e164-mobile", "GB", func(i int) string { return fmt.Sprintf("+4479%08d", 13*i%100_000_000) }},
	{"gb-national-fixed", "GB", func(i int) string { return fmt.Sprintf("0121 %03d %04d", 200+i/10_000%800, i%10_000) }},
	{"gb-00-france", "GB", func(i int) string { return fmt.Sprintf("0033 1 %08d", i%100_000_000) }},
	{"us-national", "US", func(i int) string { return fmt.Sprintf("(201) %03d-%04d", 200+i/10_000%800, i%10_000) }},
	{"gb-e164-canada", "GB", func(i int) string { return fmt.Sprintf("+1613%07d", 2_000_000+i%8_000_000) }},
}

// BenchmarkParseSlow is Parse (libphonenumber) on numbers it has not seen.
func BenchmarkParseSlow(b *testing.B) {
	for _, bf := range benchForms {
		b.Run(bf.name, func(b *testing.B) {
			raws := benchRaws(b.N, bf.form)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				sinkNumber = Parse(raws[i], bf.region)
			}
		})
	}
}

// BenchmarkParseFast is what a Normaliser does on a cache miss: the fast
// path, falling back to libphonenumber (plans compiled before timing).
func BenchmarkParseFast(b *testing.B) {
	f := newFastParser()
	for _, bf := range benchForms {
		b.Run(bf.name, func(b *testing.B) {
			f.parseOrFallBack(bf.form(0), bf.region) // compile the plans
			raws := benchRaws(b.N, bf.form)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				sinkNumber = f.parseOrFallBack(raws[i], bf.region)
			}
		})
	}
}

var sinkNumber call.Number

// TestDigitDFA checks each plan's automaton against regexp on the patterns
// it was compiled from: every accept bit is the whole-string match
// libphonenumber makes ("^(?:pattern)$"), on digit strings near each
// region's example numbers and random ones.
func TestDigitDFA(t *testing.T) {
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		t.Fatal(err)
	}
	perRegion := 60
	if testing.Short() || raceEnabled {
		perRegion = 10
	}
	r := rand.New(rand.NewPCG(7, 7))
	for _, md := range coll.GetMetadata() {
		p, err := compilePlan(md)
		if err != nil {
			t.Errorf("%s +%d: %v", md.GetId(), md.GetCountryCode(), err)
			continue
		}
		descs := []*phonenumbers.PhoneNumberDesc{md.GeneralDesc, md.PremiumRate, md.TollFree, md.SharedCost, md.Voip,
			md.PersonalNumber, md.Pager, md.Uan, md.Voicemail, md.FixedLine, md.Mobile}
		var res []*regexp.Regexp
		var examples []string
		for _, d := range descs {
			res = append(res, regexp.MustCompile("^(?:"+d.GetNationalNumberPattern()+")$"))
			if e := d.GetExampleNumber(); e != "" {
				examples = append(examples, e)
			}
		}
		if ld := md.GetLeadingDigits(); ld != "" {
			res = append(res, regexp.MustCompile("^(?:"+ld+")"))
		}
		for i := range perRegion {
			var b []byte
			if len(examples) > 0 && i%4 != 3 {
				e := examples[r.IntN(len(examples))]
				b = append(b, e[:r.IntN(len(e)+1)]...) // a prefix of a real number...
			}
			for n := r.IntN(18); len(b) < n || len(b) == 0; {
				b = append(b, byte('0'+r.IntN(10))) // ...and random digits
			}
			if i%4 == 0 && len(examples) > 0 {
				b = []byte(examples[i/4%len(examples)]) // the example itself
			}
			s := string(b)
			mask := p.dfa.run(s)
			for k, re := range res {
				if got, want := mask&(1<<k) != 0, re.MatchString(s); got != want {
					t.Errorf("%s +%d pattern %d on %s: automaton %v, regexp %v", md.GetId(), md.GetCountryCode(), k, s, got, want)
				}
			}
		}
	}
}

func TestNormaliserWarm(t *testing.T) {
	n := New(0)
	n.Warm("GB", "US", "XX", "")
	for _, r := range []string{"GB", "GG", "IM", "JE", "US", "CA", "AG"} {
		lp := n.fast.regions[r]
		if lp.p == nil {
			t.Errorf("Warm: plan of %s not compiled", r)
		}
	}
	if n.fast.regions["FR"].p != nil {
		t.Errorf("Warm compiled FR, which was not asked for")
	}
}
