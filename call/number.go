package call

// Number is a telephone number as presented on a call, after normalisation.
// The zero value is an absent number. A withheld caller is a first-class value
// (Withheld true), not an empty string.
type Number struct {
	Raw      string     // as presented (sealed at rest like every number)
	E164     string     // "+441632960001"; empty when withheld or not a number
	Withheld bool       // presentation restricted / anonymous
	Valid    bool       // a valid, assigned range per the numbering plan
	Possible bool       // length possible for its country
	Type     NumberType // range type per the numbering plan
	Region   string     // ISO 3166 region of the number ("GB"), "" if unknown
}

// Key returns the E.164 digits as an integer (0 when there is no E.164 form).
// At most 15 digits, so it always fits; used as the in-memory key for lists
// and velocity windows.
func (n Number) Key() uint64 {
	if len(n.E164) < 2 || n.E164[0] != '+' {
		return 0
	}
	var k uint64
	for i := 1; i < len(n.E164); i++ {
		c := n.E164[i]
		if c < '0' || c > '9' {
			return 0
		}
		k = k*10 + uint64(c-'0')
	}
	return k
}

// Present reports whether the number has a usable E.164 form.
func (n Number) Present() bool { return n.E164 != "" }

// NumberType is the kind of range a number belongs to.
type NumberType string

const (
	TypeUnknown     NumberType = "unknown"
	TypeFixedLine   NumberType = "fixed_line"
	TypeMobile      NumberType = "mobile"
	TypeFixedOrMob  NumberType = "fixed_line_or_mobile"
	TypeTollFree    NumberType = "toll_free"
	TypePremiumRate NumberType = "premium_rate"
	TypeSharedCost  NumberType = "shared_cost"
	TypeVoIP        NumberType = "voip"
	TypePersonal    NumberType = "personal_number"
	TypePager       NumberType = "pager"
	TypeUAN         NumberType = "uan"
	TypeVoicemail   NumberType = "voicemail"
)

// Special reports whether the type is a range that should never present as a
// caller's CLI (Ofcom CLI guidance: premium rate, pagers, voicemail access,
// personal numbering is allowed, toll free is allowed as presentation number).
func (t NumberType) Special() bool {
	switch t {
	case TypePremiumRate, TypePager, TypeVoicemail:
		return true
	}
	return false
}
