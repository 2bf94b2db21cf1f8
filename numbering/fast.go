package numbering

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/nyaruka/phonenumbers"

	"github.com/ringfence/ringfence/call"
)

// The fast path.
//
// libphonenumber spends most of a parse running regular expressions: the
// national number pattern of every number type, once or twice each, plus
// the general pattern and the leading-digit patterns of every region
// sharing a country calling code. fastParser gives exactly the same
// call.Number for the inputs it handles by replaying libphonenumber's steps
// on the number's digits, with every national number pattern of a numbering
// plan compiled into one digitDFA: a parse is then a few table walks and
// two allocations (the digits and the E.164 string).
//
// The steps replayed are those of phonenumbers.Parse (parseHelper) for
// what prepare lets through, ASCII digits with separators and perhaps a
// leading '+': the start of the number, viability, '+' or the home
// region's international prefix (and the retry without the '+' when no
// country code follows it), the country calling code, the home country
// code written without '+', the national prefix (national_prefix_for_parsing
// with its transform rule, kept only if the rest has a possible length);
// then Format(E164), IsPossibleNumber, IsValidNumber, GetRegionCodeForNumber
// and GetNumberType, which reduce to the lengths and patterns of the
// national significant number in the right region's metadata. Pattern
// matches of national numbers and leading digits are automaton runs; the
// few international and national prefixes that are not plain digit strings
// (BR, AU, AR, JE, the NANP islands...) are matched with the same regexp
// calls libphonenumber makes, leftmost-first semantics included.
//
// The differential tests (fast_test.go) hold it to Parse's results on the
// example number of every type of every region in many forms, the FTC
// complaint feed, random numbers across home regions, and FuzzFastPath.
// It falls back to libphonenumber only for a numbering plan it cannot
// compile (a missing desc, a pattern with an anchor, an automaton over
// maxDFAStates; none in the current metadata) or a national prefix
// transform that yields something other than digits (none either).

// Indexes of the patterns compiled into a plan's automaton (accept bits),
// in the order getNumberTypeHelper tests the types after the general one.
const (
	bitGeneral = iota
	bitPremiumRate
	bitTollFree
	bitSharedCost
	bitVoIP
	bitPersonal
	bitPager
	bitUAN
	bitVoicemail
	bitFixedLine
	bitMobile
	numDescs
	bitLeading = numDescs // prefix match of the region's leading_digits
)

// specialTypes are the types getNumberTypeHelper tests, in its order,
// before fixed line and mobile.
var specialTypes = [...]struct {
	bit int
	typ phonenumbers.PhoneNumberType
}{
	{bitPremiumRate, phonenumbers.PREMIUM_RATE},
	{bitTollFree, phonenumbers.TOLL_FREE},
	{bitSharedCost, phonenumbers.SHARED_COST},
	{bitVoIP, phonenumbers.VOIP},
	{bitPersonal, phonenumbers.PERSONAL_NUMBER},
	{bitPager, phonenumbers.PAGER},
	{bitUAN, phonenumbers.UAN},
	{bitVoicemail, phonenumbers.VOICEMAIL},
}

// fastParser holds the compiled numbering plans. It is built once from
// libphonenumber's metadata; each plan is compiled on first use (a few
// milliseconds for a large plan). Safe for concurrent use.
type fastParser struct {
	regions map[string]*lazyPlan // by region code, the regions Parse accepts as default region
	codes   [1000]*callingCode   // by country calling code
}

// callingCode is a country calling code and the regions that share it, in
// libphonenumber's order (the main region first).
type callingCode struct {
	str     string // decimal, "44"
	regions []string
	plans   []*lazyPlan // plans[i] is the plan of regions[i]; "001" has the non-geographic plan
}

func (c *callingCode) main() *plan { return c.plans[0].get() }

// lazyPlan is a numbering plan compiled on first use.
type lazyPlan struct {
	once sync.Once
	md   *phonenumbers.PhoneMetadata
	p    *plan // nil when md is nil or could not be compiled
}

func (l *lazyPlan) get() *plan {
	l.once.Do(func() {
		if l.md != nil {
			l.p, _ = compilePlan(l.md)
		}
	})
	return l.p
}

// plan is one region's (or non-geographic entity's) metadata, compiled.
type plan struct {
	cc    int
	dfa   *digitDFA
	lens  [numDescs]uint32 // bit L set: a number of length L is possible for the desc
	same  bool             // same_mobile_and_fixed_line_pattern
	hasLD bool             // the automaton has bitLeading

	possible, localOnly []int32 // the general desc's lengths, for testNumberLength

	// National prefix for parsing: either a list of literal alternatives
	// (and no transform rule), or the regexp with its transform rule, or
	// neither.
	npLits []string
	npRe   *regexp.Regexp
	npRule string

	// International prefix: literal alternatives or the regexp.
	iddLits []string
	iddRe   *regexp.Regexp
}

func newFastParser() *fastParser {
	f := &fastParser{regions: map[string]*lazyPlan{}}
	coll, err := phonenumbers.MetadataCollection()
	if err != nil { // the embedded metadata failed to load: everything falls back
		return f
	}
	byRegion := map[string]*phonenumbers.PhoneMetadata{}
	nonGeo := map[int]*lazyPlan{}
	for _, md := range coll.GetMetadata() {
		if md.GetId() == "001" {
			nonGeo[int(md.GetCountryCode())] = &lazyPlan{md: md}
		} else {
			byRegion[md.GetId()] = md
		}
	}
	for r := range phonenumbers.GetSupportedRegions() {
		f.regions[r] = &lazyPlan{md: byRegion[r]}
	}
	for cc := range phonenumbers.GetSupportedCallingCodes() {
		regions := phonenumbers.GetRegionCodesForCountryCode(cc)
		if cc <= 0 || cc >= len(f.codes) || len(regions) == 0 {
			continue
		}
		c := &callingCode{str: fmt.Sprint(cc), regions: regions}
		for _, r := range regions {
			lp := f.regions[r]
			if r == "001" {
				lp = nonGeo[cc]
			}
			if lp == nil {
				lp = &lazyPlan{}
			}
			c.plans = append(c.plans, lp)
		}
		f.codes[cc] = c
	}
	return f
}

// warm compiles the plans of region and of the regions sharing its
// country code (which finding a number's region may need).
func (f *fastParser) warm(region string) {
	lp := f.regions[region]
	if lp == nil || lp.get() == nil {
		return
	}
	if c := f.codes[lp.p.cc]; c != nil {
		for _, p := range c.plans {
			p.get()
		}
	}
}

// compilePlan compiles md's patterns. It fails for metadata the fast path
// does not model (a missing desc, no general pattern or lengths, a pattern
// with anchors).
func compilePlan(md *phonenumbers.PhoneMetadata) (*plan, error) {
	descs := [numDescs]*phonenumbers.PhoneNumberDesc{
		bitGeneral:     md.GetGeneralDesc(),
		bitPremiumRate: md.GetPremiumRate(),
		bitTollFree:    md.GetTollFree(),
		bitSharedCost:  md.GetSharedCost(),
		bitVoIP:        md.GetVoip(),
		bitPersonal:    md.GetPersonalNumber(),
		bitPager:       md.GetPager(),
		bitUAN:         md.GetUan(),
		bitVoicemail:   md.GetVoicemail(),
		bitFixedLine:   md.GetFixedLine(),
		bitMobile:      md.GetMobile(),
	}
	p := &plan{cc: int(md.GetCountryCode()), same: md.GetSameMobileAndFixedLinePattern()}
	patterns := make([]string, 0, numDescs+1)
	for k, d := range descs {
		if d == nil {
			return nil, fmt.Errorf("%s: desc %d missing", md.GetId(), k)
		}
		patterns = append(patterns, d.GetNationalNumberPattern())
		if len(d.PossibleLength) == 0 {
			p.lens[k] = ^uint32(0)
		}
		for _, l := range d.PossibleLength {
			if l >= 0 && l < 32 {
				p.lens[k] |= 1 << l
			}
		}
	}
	g := md.GetGeneralDesc()
	if g.GetNationalNumberPattern() == "" || len(g.PossibleLength) == 0 {
		return nil, fmt.Errorf("%s: no general pattern or lengths", md.GetId())
	}
	p.possible, p.localOnly = g.PossibleLength, g.PossibleLengthLocalOnly
	if ld := md.GetLeadingDigits(); ld != "" {
		p.hasLD = true
		patterns = append(patterns, "(?:"+ld+")[0-9]*")
	}
	dfa, err := compileDFA(patterns)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", md.GetId(), err)
	}
	p.dfa = dfa

	if npp := md.GetNationalPrefixForParsing(); npp != "" {
		rule := md.GetNationalPrefixTransformRule()
		if lits := literals(npp); lits != nil && rule == "" {
			p.npLits = lits
		} else if p.npRe, err = regexp.Compile("^(?:" + npp + ")"); err != nil {
			return nil, fmt.Errorf("%s: national prefix: %w", md.GetId(), err)
		} else {
			p.npRule = rule
		}
	}
	idd := md.GetInternationalPrefix()
	if p.iddLits = literals(idd); p.iddLits == nil {
		if p.iddRe, err = regexp.Compile(idd); err != nil {
			return nil, fmt.Errorf("%s: international prefix: %w", md.GetId(), err)
		}
	}
	return p, nil
}

// literals splits a pattern of the form "00" or "0|180020" (non-empty
// digit strings joined by '|') into its alternatives, or returns nil. The
// regexp engine's leftmost-first match of such a pattern at the start of a
// digit string is the first alternative, in order, that is a prefix of it.
func literals(pattern string) []string {
	alts := strings.Split(pattern, "|")
	for _, a := range alts {
		if a == "" || strings.Trim(a, "0123456789") != "" {
			return nil
		}
	}
	return alts
}

// general reports whether digits match the general desc's pattern (the
// pattern alone, as libphonenumber's parser checks it; not the lengths).
func (p *plan) general(digits string) bool { return p.dfa.run(digits)&(1<<bitGeneral) != 0 }

// numberType is getNumberTypeHelper for a number of length n whose
// automaton run gave mask.
func (p *plan) numberType(mask uint16, n int) phonenumbers.PhoneNumberType {
	has := func(bit int) bool { return mask&(1<<bit) != 0 && p.lens[bit]&(1<<n) != 0 }
	if !has(bitGeneral) {
		return phonenumbers.UNKNOWN
	}
	for _, t := range specialTypes {
		if has(t.bit) {
			return t.typ
		}
	}
	if has(bitFixedLine) {
		if p.same || has(bitMobile) {
			return phonenumbers.FIXED_LINE_OR_MOBILE
		}
		return phonenumbers.FIXED_LINE
	}
	if !p.same && has(bitMobile) {
		return phonenumbers.MOBILE
	}
	return phonenumbers.UNKNOWN
}

// testNumberLength is libphonenumber's testNumberLength for the general
// desc (number type UNKNOWN), on a number of length n.
func (p *plan) testNumberLength(n int) phonenumbers.ValidationResult {
	pl := p.possible
	if pl[0] == -1 {
		return phonenumbers.INVALID_LENGTH
	}
	for _, l := range p.localOnly {
		if int(l) == n {
			return phonenumbers.IS_POSSIBLE_LOCAL_ONLY
		}
	}
	switch {
	case int(pl[0]) == n:
		return phonenumbers.IS_POSSIBLE
	case int(pl[0]) > n:
		return phonenumbers.TOO_SHORT
	case int(pl[len(pl)-1]) < n:
		return phonenumbers.TOO_LONG
	}
	for _, l := range pl[1:] {
		if int(l) == n {
			return phonenumbers.IS_POSSIBLE
		}
	}
	return phonenumbers.INVALID_LENGTH
}

// stripNationalPrefix is maybeStripNationalPrefixAndCarrierCode on a digit
// string: it returns the number with the national prefix removed (or
// transformed), or unchanged. ok is false when a transform rule produced
// something other than digits (never in the current metadata).
func (p *plan) stripNationalPrefix(num string) (_ string, ok bool) {
	if num == "" {
		return num, true
	}
	if p.npLits != nil {
		for _, l := range p.npLits {
			if strings.HasPrefix(num, l) {
				if p.general(num) && !p.general(num[len(l):]) {
					return num, true
				}
				return num[len(l):], true
			}
		}
		return num, true
	}
	if p.npRe == nil || !p.npRe.MatchString(num) {
		return num, true
	}
	viable := p.general(num)
	groups := p.npRe.FindStringSubmatchIndex(num)
	numOfGroups := len(groups)/2 - 1
	if p.npRule == "" || groups[numOfGroups*2] < 0 {
		if viable && !p.general(num[groups[1]:]) {
			return num, true
		}
		return num[groups[1]:], true
	}
	transformed := p.npRe.ReplaceAllString(num, p.npRule)
	if !allDigits(transformed) {
		return "", false
	}
	if viable && !p.general(transformed) {
		return num, true
	}
	return transformed, true
}

// stripIDD is parsePrefixAsIdd on a digit string: it returns where the
// number after the international prefix starts, and whether there was one.
func (p *plan) stripIDD(num string) (int, bool) {
	end := -1
	if p.iddLits != nil {
		for _, l := range p.iddLits {
			if strings.HasPrefix(num, l) {
				end = len(l)
				break
			}
		}
	} else if loc := p.iddRe.FindStringIndex(num); loc != nil && loc[0] == 0 {
		end = loc[1]
	}
	if end < 0 || end < len(num) && num[end] == '0' { // country codes never start with 0
		return 0, false
	}
	return end, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// countryCode is extractCountryCode: the calling code digits start with.
func (f *fastParser) countryCode(digits string) *callingCode {
	if digits == "" || digits[0] == '0' {
		return nil
	}
	v := 0
	for i := 0; i < 3 && i < len(digits); i++ {
		v = v*10 + int(digits[i]-'0')
		if c := f.codes[v]; c != nil {
			return c
		}
	}
	return nil
}

// outcome says how a step of the fast path ended.
type outcome int

const (
	proceed    outcome = iota
	notANumber         // libphonenumber returns an error: Parse's result is n as it is
	fallBack           // the fast path cannot answer
)

// parseOrFallBack is Parse with the fast path first: what a Normaliser
// does on a cache miss.
func (f *fastParser) parseOrFallBack(raw, region string) call.Number {
	n, s, ok := prepare(raw)
	if !ok {
		return n
	}
	if r, ok := f.parse(n, s, region); ok {
		return r
	}
	return parseLib(n, s, region)
}

// afterIDD reads the digits after an international prefix: the country
// code, the national number and the metadata to strip its national prefix
// with.
func (f *fastParser) afterIDD(rest string) (*callingCode, string, *plan, outcome) {
	if len(rest) <= 2 {
		return nil, "", nil, notANumber // too short after the IDD
	}
	cc := f.countryCode(rest)
	if cc == nil {
		return nil, "", nil, notANumber // invalid country code
	}
	meta := cc.main()
	if meta == nil {
		return nil, "", nil, fallBack
	}
	return cc, rest[len(cc.str):], meta, proceed
}

// parse is the fast path of Parse for s, a raw number that prepare
// accepted, read in region; n is the result so far (Raw set). ok is false
// when the fast path does not handle s and libphonenumber must.
func (f *fastParser) parse(n call.Number, s, region string) (_ call.Number, ok bool) {
	// extractPossibleNumber and isViablePhoneNumber: s holds digits,
	// separators and perhaps a leading '+'; parsing starts at the first
	// '+' or digit, and needs three digits or exactly two and nothing else.
	var buf [MaxRaw]byte
	digits, start := buf[:0], -1
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= '0' && c <= '9' {
			digits = append(digits, c)
			if start < 0 {
				start = i
			}
		} else if c == '+' && start < 0 {
			start = i
		}
	}
	plus := start >= 0 && s[start] == '+'
	if len(digits) < 3 && !(len(digits) == 2 && len(s)-start == 2) {
		return n, true // not viable: not a number
	}
	d := string(digits)

	var home *plan // the default region's; nil when region is not valid
	if lp := f.regions[region]; lp != nil {
		if home = lp.get(); home == nil {
			return n, false
		}
	}
	var (
		cc   *callingCode
		nsn  string
		meta *plan // the metadata national prefixes are stripped with; nil: none
		o    outcome
	)
	switch {
	case plus:
		if len(d) <= 2 {
			return n, true // too short after the IDD
		}
		if cc = f.countryCode(d); cc != nil {
			nsn = d[len(cc.str):]
			if cc.regions[0] == region && home == nil {
				break // "001": the default region's (absent) metadata is kept
			}
			if meta = cc.main(); meta == nil {
				return n, false
			}
			break
		}
		// No country code after the '+': libphonenumber tries again
		// without it, where only an international prefix can give one.
		if home == nil {
			return n, true // invalid country code
		}
		end, isIDD := home.stripIDD(d)
		if !isIDD {
			return n, true // invalid country code
		}
		cc, nsn, meta, o = f.afterIDD(d[end:])
	case home == nil:
		return n, true // invalid default region and no '+'
	default:
		homeCC := f.codes[home.cc]
		if homeCC == nil {
			return n, false
		}
		if end, isIDD := home.stripIDD(d); isIDD {
			cc, nsn, meta, o = f.afterIDD(d[end:])
			break
		}
		cc, nsn, meta = homeCC, d, home
		if strings.HasPrefix(d, homeCC.str) {
			// The home country code without '+': kept if the rest is a
			// better number (maybeExtractCountryCode).
			pot, ok := home.stripNationalPrefix(d[len(homeCC.str):])
			if !ok {
				return n, false
			}
			if !home.general(d) && home.general(pot) || home.testNumberLength(len(d)) == phonenumbers.TOO_LONG {
				nsn = pot
				if homeCC.regions[0] != region {
					if meta = homeCC.main(); meta == nil {
						return n, false
					}
				}
			}
		}
	}
	switch o {
	case notANumber:
		return n, true
	case fallBack:
		return n, false
	}
	if len(nsn) < 2 {
		return n, true // too short
	}
	if meta != nil {
		pot, ok := meta.stripNationalPrefix(nsn)
		if !ok {
			return n, false
		}
		switch meta.testNumberLength(len(pot)) {
		case phonenumbers.TOO_SHORT, phonenumbers.IS_POSSIBLE_LOCAL_ONLY, phonenumbers.INVALID_LENGTH:
		default:
			nsn = pot
		}
	}
	if len(nsn) < 2 || len(nsn) > 17 || 1+len(cc.str)+len(nsn) > 16 {
		return n, true // too short or long for libphonenumber, or for E.164
	}

	// Classification: IsPossibleNumber by the main region's lengths; the
	// region as GetRegionCodeForNumber finds it; the type in that region.
	main := cc.main()
	if main == nil {
		return n, false
	}
	var (
		regionCode string
		rp         *plan
		mask       uint16
	)
	if len(cc.regions) == 1 {
		regionCode, rp, mask = cc.regions[0], main, main.dfa.run(nsn)
	} else {
		for i, r := range cc.regions {
			p := cc.plans[i].get()
			if p == nil {
				return n, false
			}
			m := p.dfa.run(nsn)
			if p.hasLD && m&(1<<bitLeading) != 0 || !p.hasLD && p.numberType(m, len(nsn)) != phonenumbers.UNKNOWN {
				regionCode, rp, mask = r, p, m
				break
			}
		}
	}
	n.E164 = "+" + cc.str + nsn
	r := main.testNumberLength(len(nsn))
	n.Possible = r == phonenumbers.IS_POSSIBLE || r == phonenumbers.IS_POSSIBLE_LOCAL_ONLY
	n.Type = call.TypeUnknown
	if rp != nil {
		t := rp.numberType(mask, len(nsn))
		n.Valid = t != phonenumbers.UNKNOWN
		n.Type = typeOf(t)
	}
	n.Region = regionCode
	return n, true
}
