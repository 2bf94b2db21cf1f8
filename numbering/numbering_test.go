package numbering

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/call"
)

// raceEnabled is set under -race (race_test.go), where libphonenumber runs
// some fifty times slower.
var raceEnabled bool

// Shared test data, relative to this package's directory.
const (
	exampleNumbersCSV = "../../shared/testdata/numbers/example_numbers_by_region_and_type.csv"
	ftcFeedCSV        = "../../shared/testdata/numbers/ftc_dnc_reported_numbers_90days_2025-12-11.csv"
)

type parseCase struct {
	name, raw, region string
	want              call.Number // Raw is filled in from raw
}

// parseCases are the Parse table; FuzzParse seeds its corpus from them.
var parseCases = []parseCase{
	// E.164 in its various dressings.
	{"e164 GB fixed", "+441212345678", "GB", call.Number{E164: "+441212345678", Valid: true, Possible: true, Type: call.TypeFixedLine, Region: "GB"}},
	{"e164 with spaces", "+44 121 234 5678", "GB", call.Number{E164: "+441212345678", Valid: true, Possible: true, Type: call.TypeFixedLine, Region: "GB"}},
	{"e164 with dashes dots parens", "+44 (121) 234-56.78", "GB", call.Number{E164: "+441212345678", Valid: true, Possible: true, Type: call.TypeFixedLine, Region: "GB"}},
	{"e164 surrounding space", "  +441212345678\t", "GB", call.Number{E164: "+441212345678", Valid: true, Possible: true, Type: call.TypeFixedLine, Region: "GB"}},
	{"e164 read in another region", "+441212345678", "US", call.Number{E164: "+441212345678", Valid: true, Possible: true, Type: call.TypeFixedLine, Region: "GB"}},
	{"e164 GB mobile", "+447400123456", "GB", call.Number{E164: "+447400123456", Valid: true, Possible: true, Type: call.TypeMobile, Region: "GB"}},
	{"e164 Guernsey mobile shares +44", "+447781123456", "GB", call.Number{E164: "+447781123456", Valid: true, Possible: true, Type: call.TypeMobile, Region: "GG"}},
	{"e164 FR", "+33123456789", "GB", call.Number{E164: "+33123456789", Valid: true, Possible: true, Type: call.TypeFixedLine, Region: "FR"}},
	{"e164 Italian leading zero kept", "+390612345678", "GB", call.Number{E164: "+390612345678", Valid: true, Possible: true, Type: call.TypeFixedLine, Region: "IT"}},
	{"e164 non-geographic toll free", "+80012345678", "GB", call.Number{E164: "+80012345678", Valid: true, Possible: true, Type: call.TypeTollFree, Region: "001"}},
	// National and international formats of the region.
	{"national GB fixed", "0121 234 5678", "GB", call.Number{E164: "+441212345678", Valid: true, Possible: true, Type: call.TypeFixedLine, Region: "GB"}},
	{"national GB mobile", "07400 123456", "GB", call.Number{E164: "+447400123456", Valid: true, Possible: true, Type: call.TypeMobile, Region: "GB"}},
	{"national GB toll free", "0800 123 4567", "GB", call.Number{E164: "+448001234567", Valid: true, Possible: true, Type: call.TypeTollFree, Region: "GB"}},
	{"international with 00 from GB", "0044 121 234 5678", "GB", call.Number{E164: "+441212345678", Valid: true, Possible: true, Type: call.TypeFixedLine, Region: "GB"}},
	{"international with 00 to FR", "0033123456789", "GB", call.Number{E164: "+33123456789", Valid: true, Possible: true, Type: call.TypeFixedLine, Region: "FR"}},
	{"international with 011 from US", "011441212345678", "US", call.Number{E164: "+441212345678", Valid: true, Possible: true, Type: call.TypeFixedLine, Region: "GB"}},
	{"US 10-digit in region US", "2015550123", "US", call.Number{E164: "+12015550123", Valid: true, Possible: true, Type: call.TypeFixedOrMob, Region: "US"}},
	{"US formatted in region US", "(201) 555-0123", "US", call.Number{E164: "+12015550123", Valid: true, Possible: true, Type: call.TypeFixedOrMob, Region: "US"}},
	{"US with trunk 1 in region US", "1 201 555 0123", "US", call.Number{E164: "+12015550123", Valid: true, Possible: true, Type: call.TypeFixedOrMob, Region: "US"}},
	{"US 10-digit read in GB is a London number", "2015550123", "GB", call.Number{E164: "+442015550123", Valid: true, Possible: true, Type: call.TypeFixedLine, Region: "GB"}},
	// tel: URIs.
	{"tel uri", "tel:+441212345678", "GB", call.Number{E164: "+441212345678", Valid: true, Possible: true, Type: call.TypeFixedLine, Region: "GB"}},
	{"tel uri upper case with separators", "TEL:+44-121-234-5678", "GB", call.Number{E164: "+441212345678", Valid: true, Possible: true, Type: call.TypeFixedLine, Region: "GB"}},
	{"tel uri with parameters", "tel:+44-121-234-5678;phone-context=example.com;npdi", "GB", call.Number{E164: "+441212345678", Valid: true, Possible: true, Type: call.TypeFixedLine, Region: "GB"}},
	{"tel uri local number", "tel:01212345678;phone-context=+44", "GB", call.Number{E164: "+441212345678", Valid: true, Possible: true, Type: call.TypeFixedLine, Region: "GB"}},
	// Ranges that matter for screening.
	{"premium rate", "09012345678", "GB", call.Number{E164: "+449012345678", Valid: true, Possible: true, Type: call.TypePremiumRate, Region: "GB"}},
	{"premium rate e164", "+449098790000", "GB", call.Number{E164: "+449098790000", Valid: true, Possible: true, Type: call.TypePremiumRate, Region: "GB"}},
	{"pager", "+447640123456", "GB", call.Number{E164: "+447640123456", Valid: true, Possible: true, Type: call.TypePager, Region: "GB"}},
	{"personal number", "+447012345678", "GB", call.Number{E164: "+447012345678", Valid: true, Possible: true, Type: call.TypePersonal, Region: "GB"}},
	{"US premium rate", "9002345678", "US", call.Number{E164: "+19002345678", Valid: true, Possible: true, Type: call.TypePremiumRate, Region: "US"}},
	{"drama range is unassigned", "01632 960001", "GB", call.Number{E164: "+441632960001", Valid: false, Possible: true, Type: call.TypeUnknown}},
	{"drama mobile is unassigned", "07700 900123", "GB", call.Number{E164: "+447700900123", Valid: false, Possible: true, Type: call.TypeUnknown}},
	{"too short for GB", "+44999", "GB", call.Number{E164: "+44999", Valid: false, Possible: false, Type: call.TypeUnknown}},
	{"one digit too long for GB", "+4412123456789", "GB", call.Number{E164: "+4412123456789", Valid: false, Possible: false, Type: call.TypeUnknown}},
	{"NANP local 7 digits is possible only locally", "2991577", "US", call.Number{E164: "+12991577", Valid: false, Possible: true, Type: call.TypeUnknown}},
	// Withheld.
	{"withheld empty", "", "GB", call.Number{Withheld: true}},
	{"withheld blank", "   ", "GB", call.Number{Withheld: true}},
	{"withheld anonymous", "anonymous", "GB", call.Number{Withheld: true}},
	{"withheld Anonymous", "Anonymous", "GB", call.Number{Withheld: true}},
	{"withheld WITHHELD", "WITHHELD", "GB", call.Number{Withheld: true}},
	{"withheld restricted", " restricted ", "GB", call.Number{Withheld: true}},
	{"withheld private", "Private", "GB", call.Number{Withheld: true}},
	{"withheld unavailable", "unavailable", "GB", call.Number{Withheld: true}},
	{"withheld unknown", "Unknown", "GB", call.Number{Withheld: true}},
	// Not numbers.
	{"letters rejected", "ABC", "GB", call.Number{}},
	{"vanity letters rejected", "0800-FLOWERS", "US", call.Number{}},
	{"digits with letters rejected", "+44121234567x", "GB", call.Number{}},
	{"sip uri is not a raw number", "sip:+441212345678@example.com", "GB", call.Number{}},
	{"plus inside rejected", "44+1212345678", "GB", call.Number{}},
	{"extension parameter dropped", "+441212345678;ext=12", "GB", call.Number{E164: "+441212345678", Valid: true, Possible: true, Type: call.TypeFixedLine, Region: "GB"}},
	{"hash rejected", "+441212345678#", "GB", call.Number{}},
	{"no digits", "+ () -", "GB", call.Number{}},
	{"lone plus", "+", "GB", call.Number{}},
	{"single digit", "1", "GB", call.Number{}},
	{"unassigned country code", "+999123456", "GB", call.Number{}},
	{"country code zero", "+0441212345678", "GB", call.Number{}},
	{"bare tel scheme", "tel:", "GB", call.Number{}},
	{"overlong raw", "+44 121 234 5678" + strings.Repeat("-", MaxRaw), "GB", call.Number{}},
	{"surrounding space does not count toward MaxRaw", "+44 121 234 5678" + strings.Repeat(" ", MaxRaw), "GB", call.Number{E164: "+441212345678", Valid: true, Possible: true, Type: call.TypeFixedLine, Region: "GB"}},
	{"overlong digits", strings.Repeat("1", MaxRaw+1), "GB", call.Number{}},
	{"more digits than E.164 allows", "+4412123456789012345", "GB", call.Number{}},
	{"more digits than a uint64 holds", "+99812345678901234567", "GB", call.Number{}},
	{"nsn over libphonenumber limit", "+998123456789012345678", "GB", call.Number{}},
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			want.Raw = tc.raw
			if want.E164 == "" && !want.Withheld {
				want.Type = "" // not a number: nothing classified
			}
			if got := Parse(tc.raw, tc.region); got != want {
				t.Errorf("Parse(%q, %q)\n got %+v\nwant %+v", tc.raw, tc.region, got, want)
			}
		})
	}
}

// TestParseKey checks the E.164 form always fits call.Number.Key, which is
// what lists and velocity windows are keyed by.
func TestParseKey(t *testing.T) {
	for _, tc := range parseCases {
		n := Parse(tc.raw, tc.region)
		checkE164(t, tc.raw, n)
	}
}

// checkE164 asserts the invariants of a parsed number's E.164 form.
func checkE164(t *testing.T, raw string, n call.Number) {
	t.Helper()
	if n.Raw != raw {
		t.Fatalf("Parse(%q).Raw = %q", raw, n.Raw)
	}
	if n.E164 == "" {
		if n.Key() != 0 || n.Valid || n.Possible || n.Region != "" {
			t.Fatalf("Parse(%q) = %+v: no E.164 form but classified", raw, n)
		}
		return
	}
	if n.Withheld {
		t.Fatalf("Parse(%q) = %+v: withheld with an E.164 form", raw, n)
	}
	if n.E164[0] != '+' || len(n.E164) < 2 || len(n.E164) > 16 {
		t.Fatalf("Parse(%q).E164 = %q: want '+' and 1-15 digits", raw, n.E164)
	}
	for i := 1; i < len(n.E164); i++ {
		if c := n.E164[i]; c < '0' || c > '9' {
			t.Fatalf("Parse(%q).E164 = %q: non-digit after '+'", raw, n.E164)
		}
	}
	if n.E164[1] == '0' {
		t.Fatalf("Parse(%q).E164 = %q: country codes never start with 0", raw, n.E164)
	}
	if k := "+" + strconv.FormatUint(n.Key(), 10); k != n.E164 {
		t.Fatalf("Parse(%q): Key() = %s, E164 = %s: Key does not round trip", raw, k, n.E164)
	}
	if n.Valid && !n.Possible {
		t.Fatalf("Parse(%q) = %+v: valid but not possible", raw, n)
	}
}

func TestNormaliserMatchesParse(t *testing.T) {
	n := New(1024)
	for round := range 3 { // round 0 fills the cache, later rounds read it
		for _, tc := range parseCases {
			want := Parse(tc.raw, tc.region)
			if got := n.Number(tc.raw, tc.region); got != want {
				t.Errorf("round %d: Number(%q, %q) = %+v, Parse gives %+v", round, tc.raw, tc.region, got, want)
			}
		}
	}
	// The region is part of the key: the same digits read in two regions
	// must not share an entry.
	gb, us := n.Number("2015550123", "GB"), n.Number("2015550123", "US")
	if gb.E164 == us.E164 {
		t.Errorf("national number read in GB and US gave the same E.164 %s", gb.E164)
	}
}

func TestNormaliserBounded(t *testing.T) {
	for _, max := range []int{128, 2048} {
		t.Run(strconv.Itoa(max), func(t *testing.T) {
			n := New(max)
			for i := range 10 * max {
				// Not-numbers are cached like numbers and cost no
				// libphonenumber call; every tenth is a real number.
				raw := "caller-" + strconv.Itoa(i)
				if i%10 == 0 {
					raw = fmt.Sprintf("+4412123%05d", i)
				}
				n.Number(raw, "GB")
				if l := n.Len(); l > max {
					t.Fatalf("after %d distinct numbers Len() = %d, want at most %d", i+1, l, max)
				}
			}
			if l := n.Len(); l < max/4 {
				t.Errorf("Len() = %d after %d numbers: cache keeps almost nothing (max %d)", l, 10*max, max)
			}
		})
	}
}

// TestNormaliserKeepsHotEntries checks the documented two-generation
// behaviour: an entry read while it is in the old generation is copied
// forward, so a number that keeps being used survives any number of
// generation changes and stays a map lookup (libphonenumber allocates about
// a hundred times per number; a cached lookup next to nothing).
func TestNormaliserKeepsHotEntries(t *testing.T) {
	n := New(64 * 2 * 4) // 4 entries per generation per shard
	const hot = "+441212345678"
	n.Number(hot, "GB")
	var before, after runtime.MemStats
	for i := range 64 * 4 * 8 { // turns every shard's generations over many times
		n.Number("fill-"+strconv.Itoa(i), "GB")
		runtime.ReadMemStats(&before)
		n.Number(hot, "GB") // in daily use
		runtime.ReadMemStats(&after)
		if a := after.Mallocs - before.Mallocs; a > 10 {
			t.Fatalf("after %d other numbers, the hot number was parsed again (%d allocations): it fell out of the cache", i+1, a)
		}
	}
}

func TestNormaliserConcurrent(t *testing.T) {
	n := New(256)
	var raws []string
	want := map[string]call.Number{}
	for i := range 60 {
		raw := fmt.Sprintf("+4412123%05d", i)
		raws = append(raws, raw)
		want[raw] = Parse(raw, "GB")
	}
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 2000 {
				raw := raws[(i*7+g)%len(raws)]
				if i%2 == 1 {
					raw = "churn-" + strconv.Itoa(g*2000+i) // keeps the generations turning
				}
				got := n.Number(raw, "GB")
				if w, ok := want[raw]; ok && got != w || !ok && got.E164 != "" {
					t.Errorf("Number(%q) = %+v, want %+v", raw, got, w)
					return
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
	if n.Len() > 256 {
		t.Errorf("Len() = %d, want at most 256", n.Len())
	}
}

// csvType maps the type column of the example-number file to the
// call.NumberTypes a number of that type may be classified as. In regions
// where fixed and mobile ranges overlap (NANP), libphonenumber answers
// "fixed line or mobile" for both.
var csvType = map[string][]call.NumberType{
	"fixedLine":      {call.TypeFixedLine, call.TypeFixedOrMob},
	"mobile":         {call.TypeMobile, call.TypeFixedOrMob},
	"tollFree":       {call.TypeTollFree},
	"premiumRate":    {call.TypePremiumRate},
	"sharedCost":     {call.TypeSharedCost},
	"voip":           {call.TypeVoIP},
	"personalNumber": {call.TypePersonal},
	"pager":          {call.TypePager},
	"uan":            {call.TypeUAN},
	"voicemail":      {call.TypeVoicemail},
}

// TestExampleNumbers is the conformance test against libphonenumber's
// example number of every type in every region.
func TestExampleNumbers(t *testing.T) {
	rows := readExamples(t)
	for i, row := range rows {
		types, ok := csvType[row.typ]
		if !ok {
			t.Errorf("row %d: unknown type %q", i+1, row.typ)
			continue
		}
		n := Parse(row.e164, row.region)
		checkE164(t, row.e164, n)
		if n.E164 != row.e164 {
			t.Errorf("%s %s: Parse(%q) = %q, want itself", row.region, row.typ, row.e164, n.E164)
		}
		if n.Valid != row.valid {
			t.Errorf("%s %s: %s Valid = %v, want %v", row.region, row.typ, row.e164, n.Valid, row.valid)
		}
		if !containsType(types, n.Type) {
			t.Errorf("%s %s: %s Type = %s, want one of %v", row.region, row.typ, row.e164, n.Type, types)
		}
	}
	if len(rows) < 1000 {
		t.Errorf("only %d rows read from %s", len(rows), exampleNumbersCSV)
	}
}

func containsType(ts []call.NumberType, t call.NumberType) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

// TestFTCComplaintFeed normalises the FTC's do-not-call complaint feed (90
// days of reported numbers, mostly 10-digit NANP numbers without +1, as a
// US tenant would receive them) and checks that what is rejected is
// rejected for its length. It is also the fast path's differential test on
// the feed: every row must give Parse's result there too.
func TestFTCComplaintFeed(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("338k numbers through libphonenumber (about 10 s, minutes under -race); skipped in -short and -race")
	}
	f, err := os.Open(ftcFeedCSV)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("shared test data %s not found (it lives beside the repository in /work/shared); skipping", ftcFeedCSV)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() || strings.TrimSpace(sc.Text()) != "pattern" {
		t.Fatalf("%s: want header %q, got %q", ftcFeedCSV, "pattern", sc.Text())
	}
	var rows, possible, rejected int
	rejectedByLen := map[int]int{}
	fast := newAgreement(t, "FTC feed in US")
	defer fast.report()
	for sc.Scan() {
		raw := strings.TrimRight(sc.Text(), "\r") // CRLF line endings
		rows++
		n := Parse(raw, "US")
		if n.Raw != raw {
			t.Fatalf("row %d: Raw = %q, want %q", rows, n.Raw, raw)
		}
		fast.checkParsed(raw, "US", n)
		if n.Possible && strings.HasPrefix(n.E164, "+1") {
			possible++
			continue
		}
		rejected++
		digits := 0
		for _, c := range raw {
			if c >= '0' && c <= '9' {
				digits++
			}
		}
		rejectedByLen[digits]++
		// NANP numbers are 10 digits (7 dialled locally; 11 with the
		// trunk prefix 1). Anything else the feed holds is a typo or a
		// foreign number without its country code.
		if digits == 10 || digits == 7 || digits == 11 && raw[0] == '1' {
			t.Errorf("row %d: %q (%d digits) rejected: %+v", rows, raw, digits, n)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rows: %d possible +1 numbers, %d rejected; rejected by digit count: %v", rows, possible, rejected, rejectedByLen)
	if rows != 337_810 {
		t.Errorf("read %d rows, want 337810", rows)
	}
	if possible <= 330_000 {
		t.Errorf("only %d of %d rows gave a possible +1 number, want more than 330000", possible, rows)
	}
}

type headerCase struct {
	name, in, want string
}

// headerCases are the HeaderNumber table; FuzzHeaderNumber seeds from them.
var headerCases = []headerCase{
	{"bare sip uri", "sip:+441212345678@example.com", "+441212345678"},
	{"name-addr", "<sip:+441212345678@example.com>", "+441212345678"},
	{"display name and params", `"Bob Smith" <sip:+441212345678@gw.example.com;user=phone>;tag=a48s`, "+441212345678"},
	{"unquoted display name", `Bob <sip:+441212345678@gw.example.com;user=phone>;tag=x`, "+441212345678"},
	{"quoted display name with angle bracket", `"Bob <Sales>" <sip:+441212345678@example.com>;tag=1`, "+441212345678"},
	{"quoted display name with escaped quote", `"Bob \"<x@y>\"" <sip:+441212345678@example.com>`, "+441212345678"},
	{"bare uri with header params", "sip:+441212345678@example.com;tag=abc", "+441212345678"},
	{"sips", "<sips:+441212345678@example.com>", "+441212345678"},
	{"upper-case scheme", "<SIP:+441212345678@EXAMPLE.COM>", "+441212345678"},
	{"national user part", "<sip:01212345678@10.0.0.1:5060;user=phone>", "01212345678"},
	{"user parameters", "<sip:+441212345678;npdi;rn=+441210000000@example.com;user=phone>", "+441212345678"},
	{"escaped plus", "<sip:%2B441212345678@example.com;user=phone>", "+441212345678"},
	{"user and password", "sip:alice:secret@example.com", "alice"},
	{"number and password", "<sip:+441212345678:pw@example.com>", "+441212345678"},
	{"tel uri", "tel:+441212345678", "+441212345678"},
	{"tel with phone-context", "tel:+44-121-234-5678;phone-context=example.com", "+44-121-234-5678"},
	{"tel in brackets with params", `"x" <tel:01212345678;phone-context=+44>;tag=9`, "01212345678"},
	{"anonymous", `"Anonymous" <sip:anonymous@anonymous.invalid>;tag=1`, "anonymous"},
	{"anonymous upper case", "sip:Anonymous@anonymous.invalid", "anonymous"},
	{"no user part", "sip:example.com", ""},
	{"no user part in brackets", "<sip:gw.example.com;lr>", ""},
	{"empty", "", ""},
	{"empty brackets", "<>", ""},
	{"plain number", "+441212345678", "+441212345678"},
	{"plain number with space", "  +44 121 234 5678  ", "+44 121 234 5678"},
	{"unclosed bracket", "<sip:+441212345678@example.com", "+441212345678"},
	{"name user", "<sip:alice@example.com>", "alice"},
}

func TestHeaderNumber(t *testing.T) {
	for _, tc := range headerCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := HeaderNumber(tc.in); got != tc.want {
				t.Errorf("HeaderNumber(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestHeaderNumberSameNumber checks the forms a carrier uses for one number
// all normalise to the same E.164 (what the identity signal relies on).
func TestHeaderNumberSameNumber(t *testing.T) {
	forms := []string{
		"sip:+441212345678@example.com",
		`"B" <sip:+441212345678@example.com;user=phone>;tag=1`,
		"<sips:+44-121-234-5678@example.com>",
		"<sip:%2B441212345678@example.com>",
		"tel:+441212345678",
		"<tel:01212345678>",
		"tel:0121 234 5678;phone-context=+44",
		"<sip:01212345678@10.1.1.1>",
		"<sip:00441212345678@10.1.1.1>",
	}
	for _, f := range forms {
		if got := Parse(HeaderNumber(f), "GB").E164; got != "+441212345678" {
			t.Errorf("Parse(HeaderNumber(%q)) = %q, want +441212345678", f, got)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, tc := range parseCases {
		f.Add(tc.raw, tc.region)
	}
	f.Fuzz(func(t *testing.T, raw, region string) {
		if len(region) > 3 {
			region = region[:3] // regions are short codes; keep the fuzzer on raw
		}
		n := Parse(raw, region)
		checkE164(t, raw, n)
		if n.Withheld && n.E164 != "" {
			t.Fatalf("Parse(%q) withheld with E164 %q", raw, n.E164)
		}
		// A valid number's E.164 form reads back as itself. (Not so for
		// some invalid ones: libphonenumber strips a national prefix from
		// "00000000000" read in BA, giving +3870000000000, which reads
		// back as +387000000000; see testdata/fuzz/FuzzParse.)
		if n.Valid {
			if again := Parse(n.E164, "GB"); again.E164 != n.E164 {
				t.Fatalf("Parse(%q) = %s, which parses again to %q", raw, n.E164, again.E164)
			}
		}
	})
}

func FuzzHeaderNumber(f *testing.F) {
	for _, tc := range headerCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got := HeaderNumber(v)
		if len(got) > len(v) {
			t.Fatalf("HeaderNumber(%q) = %q: longer than its input", v, got)
		}
		n := Parse(got, "GB") // whatever it returns is safe to parse
		checkE164(t, got, n)
		// Whatever digits the input holds, dressed as a header, come back.
		var d strings.Builder
		for i := 0; i < len(v) && d.Len() < 15; i++ {
			if c := v[i]; c >= '0' && c <= '9' {
				d.WriteByte(c)
			}
		}
		if d.Len() == 0 {
			return
		}
		num := "+" + d.String()
		for _, h := range []string{
			`"` + strings.NewReplacer(`"`, ``, `\`, ``).Replace(v) + `" <sip:` + num + `@example.com;user=phone>;tag=1`,
			"<sips:" + num + ";npdi@example.com>",
			"sip:" + num + "@example.com;tag=" + strings.Map(func(r rune) rune {
				if r == '<' || r == '"' {
					return -1
				}
				return r
			}, v),
			"tel:" + num + ";phone-context=example.com",
		} {
			if got := HeaderNumber(h); got != num {
				t.Fatalf("HeaderNumber(%q) = %q, want %q", h, got, num)
			}
		}
	})
}
