// Package numbering normalises telephone numbers to E.164 and classifies them
// with libphonenumber's metadata (github.com/nyaruka/phonenumbers).
//
// libphonenumber costs tens of microseconds and about a hundred allocations
// per number, too slow for the screening path, so a Normaliser memoises
// results by (region, raw string) in a bounded two-generation cache: callers
// and dialled numbers repeat, so the steady state is a map lookup. A number
// not in the cache (a caller never seen before) takes a fast path that
// replays libphonenumber's parse on the digits, with each numbering plan's
// patterns compiled into one automaton (fast.go): the same result as Parse
// in a fraction of a microsecond and two allocations, with libphonenumber
// as the fallback for what it does not handle.
package numbering

import (
	"strconv"
	"strings"
	"sync"

	"github.com/nyaruka/phonenumbers"

	"github.com/ringfence/ringfence/call"
)

// MaxRaw is the longest raw number accepted; longer input is not a number.
const MaxRaw = 64

// Normaliser turns raw presented numbers into call.Numbers. Safe for
// concurrent use. The zero value is not usable; call New.
type Normaliser struct {
	shards [64]shard
	perGen int
	fast   *fastParser
}

// shard is a two-generation cache: lookups try cur then old; when cur is full
// it becomes old and a fresh cur starts, so memory is bounded by 2*perGen
// entries per shard and recently used entries survive (they are copied
// forward on a hit in old).
type shard struct {
	mu  sync.RWMutex
	cur map[key]call.Number
	old map[key]call.Number
}

type key struct{ region, raw string }

// New returns a Normaliser caching up to about maxEntries numbers (0 means
// 1<<20).
func New(maxEntries int) *Normaliser {
	if maxEntries <= 0 {
		maxEntries = 1 << 20
	}
	n := &Normaliser{perGen: max(1, maxEntries/2/64), fast: newFastParser()}
	for i := range n.shards {
		n.shards[i].cur = make(map[key]call.Number)
	}
	return n
}

// Warm loads libphonenumber's metadata now so the first call does not pay
// for it, and compiles the fast path's numbering plans for regions (the
// tenants' home regions) and for the regions sharing their country codes:
// a millisecond or so per plan, which the first number of a region not
// warmed pays instead.
func (n *Normaliser) Warm(regions ...string) {
	Parse("+441632960001", "GB")
	for _, r := range regions {
		n.fast.warm(r)
	}
}

// Number returns the normalised form of raw, read in region (the tenant's
// home country) when it is in national format: the same as Parse(raw,
// region). A number not in the cache is parsed by the fast path when it
// can (compiled numbering plans; well under a microsecond and two
// allocations) and by libphonenumber otherwise.
func (n *Normaliser) Number(raw, region string) call.Number {
	k := key{region, raw}
	s := n.shard(k)
	s.mu.RLock()
	num, ok := s.cur[k]
	inOld := false
	if !ok {
		num, ok = s.old[k]
		inOld = ok
	}
	s.mu.RUnlock()
	if ok && !inOld {
		return num
	}
	if !ok {
		num = n.fast.parseOrFallBack(raw, region)
	}
	s.mu.Lock() // new, or a hit in old: (re)insert in cur
	if len(s.cur) >= n.perGen {
		s.old, s.cur = s.cur, make(map[key]call.Number, n.perGen)
	}
	s.cur[k] = num
	s.mu.Unlock()
	return num
}

// Len reports how many entries the cache holds.
func (n *Normaliser) Len() int {
	total := 0
	for i := range n.shards {
		s := &n.shards[i]
		s.mu.RLock()
		total += len(s.cur) + len(s.old)
		s.mu.RUnlock()
	}
	return total
}

func (n *Normaliser) shard(k key) *shard { return &n.shards[(fnv(k.raw)^fnv(k.region))&63] }

func fnv(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

var withheldWords = map[string]bool{
	"": true, "anonymous": true, "withheld": true, "restricted": true,
	"private": true, "unavailable": true, "unknown": true,
}

// Parse normalises raw without caching. raw may be E.164 ("+44 1632
// 960001"), national ("01632 960001"), international with the region's
// exit code, a tel: URI, or a word meaning withheld ("anonymous"); visual
// separators are ignored. A raw value that is not a number gives a Number
// with Raw set and E164 empty.
//
// Parse always asks libphonenumber; a Normaliser answers the same for the
// common forms from compiled numbering plans (see fast.go), much faster.
func Parse(raw, region string) call.Number {
	n, s, ok := prepare(raw)
	if !ok {
		return n
	}
	return parseLib(n, s, region)
}

// prepare does what Parse does before libphonenumber: it returns the
// result for a withheld or implausible raw value (ok false), or the
// cleaned-up number to parse (s, with n.Raw set).
func prepare(raw string) (n call.Number, s string, ok bool) {
	n = call.Number{Raw: raw}
	s = strings.TrimSpace(raw)
	if withheldWords[strings.ToLower(s)] {
		n.Withheld = true
		return n, "", false
	}
	if len(s) > MaxRaw {
		return n, "", false
	}
	if len(s) > 4 && strings.EqualFold(s[:4], "tel:") {
		s = s[4:]
	}
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	if !plausible(s) {
		return n, "", false
	}
	return n, s, true
}

// parseLib is the libphonenumber part of Parse, for s from prepare.
func parseLib(n call.Number, s, region string) call.Number {
	pn, err := phonenumbers.Parse(s, region)
	if err != nil {
		return n
	}
	e164 := phonenumbers.Format(pn, phonenumbers.E164)
	if len(e164) > 16 {
		// libphonenumber accepts national numbers of up to 17 digits; E.164
		// allows 15 in all, and call.Number.Key needs them to fit a uint64.
		return n
	}
	n.E164 = e164
	n.Possible = phonenumbers.IsPossibleNumber(pn)
	n.Valid = phonenumbers.IsValidNumber(pn)
	n.Region = phonenumbers.GetRegionCodeForNumber(pn)
	if n.Region == "ZZ" {
		n.Region = ""
	}
	n.Type = typeOf(phonenumbers.GetNumberType(pn))
	return n
}

// plausible rejects input that is clearly not a phone number before
// libphonenumber (which accepts letters as vanity digits) sees it.
func plausible(s string) bool {
	digits := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '+' && i == 0, c == ' ', c == '-', c == '.', c == '(', c == ')':
		default:
			return false
		}
	}
	return digits > 0
}

func typeOf(t phonenumbers.PhoneNumberType) call.NumberType {
	switch t {
	case phonenumbers.FIXED_LINE:
		return call.TypeFixedLine
	case phonenumbers.MOBILE:
		return call.TypeMobile
	case phonenumbers.FIXED_LINE_OR_MOBILE:
		return call.TypeFixedOrMob
	case phonenumbers.TOLL_FREE:
		return call.TypeTollFree
	case phonenumbers.PREMIUM_RATE:
		return call.TypePremiumRate
	case phonenumbers.SHARED_COST:
		return call.TypeSharedCost
	case phonenumbers.VOIP:
		return call.TypeVoIP
	case phonenumbers.PERSONAL_NUMBER:
		return call.TypePersonal
	case phonenumbers.PAGER:
		return call.TypePager
	case phonenumbers.UAN:
		return call.TypeUAN
	case phonenumbers.VOICEMAIL:
		return call.TypeVoicemail
	}
	return call.TypeUnknown
}

// CountryCode returns the country calling code of a region with its plus
// ("+44" for GB, also for the Crown Dependencies GG, JE and IM), or "" for
// an unknown region.
func CountryCode(region string) string {
	cc := phonenumbers.GetCountryCodeForRegion(region)
	if cc == 0 {
		return ""
	}
	return "+" + strconv.Itoa(cc)
}
