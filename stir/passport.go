package stir

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
)

// PASSporT types (RFC 8588 shaken, RFC 8946 div).
const (
	PPTShaken = "shaken"
	PPTDiv    = "div"
)

// Passport is one Identity header value as the verifier understood it.
// Telephone numbers are kept as digits only (a leading '+' and visual
// separators removed), as RFC 8224 section 8.3 compares them.
type Passport struct {
	Index  int    `json:"index"`            // position among the call's Identity values
	Status Status `json:"status"`           // this PASSporT's own outcome
	PPT    string `json:"ppt,omitempty"`    // "shaken", "div", other or "" (base PASSporT)
	Attest string `json:"attest,omitempty"` // "A", "B" or "C" (shaken)
	OrigID string `json:"origid,omitempty"` // the originating carrier's opaque id (shaken)
	// OrigTN, DestTN and DivTN are the orig, dest and div claims' numbers.
	OrigTN string   `json:"orig_tn,omitempty"`
	DestTN []string `json:"dest_tn,omitempty"`
	DivTN  []string `json:"div_tn,omitempty"`
	IAT    int64    `json:"iat,omitempty"` // issued-at, Unix seconds
	X5U    string   `json:"x5u,omitempty"` // certificate URL
	// SPC is the service provider code (OCN in the US) of the signing
	// certificate's TNAuthList, when the certificate was available.
	SPC string `json:"spc,omitempty"`
	// Sig is the base64url signature: ".." + Sig is the PASSporT's compact
	// form, the RFC 9410 "ppi" that names it in a Reason header field.
	Sig string `json:"sig,omitempty"`
}

// jwsHeader is the protected header of a PASSporT (RFC 8225 section 4).
type jwsHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	PPT string `json:"ppt"`
	X5U string `json:"x5u"`
}

// claims are the PASSporT claims verification needs; others are ignored.
type claims struct {
	Attest string          `json:"attest"`
	Orig   json.RawMessage `json:"orig"`
	Dest   json.RawMessage `json:"dest"`
	Div    json.RawMessage `json:"div"`
	IAT    json.RawMessage `json:"iat"`
	OrigID string          `json:"origid"`
}

// tnObject is the orig, dest or div claim: {"tn": ...} or {"uri": ...}.
type tnObject struct {
	TN  json.RawMessage `json:"tn"`
	URI json.RawMessage `json:"uri"`
}

// decoded is a PASSporT after base64 and JSON decoding, before any check
// that needs the call or the certificate.
type decoded struct {
	hdr     jwsHeader
	signing []byte // header "." claims: the JWS signing input
	sig     []byte // base64url signature
	p       Passport
}

// reasons collects findings; the first few without allocating.
type reasons struct {
	buf  [6]Reason
	n    int
	more []Reason
}

func (rs *reasons) add(r Reason) {
	if rs.n < len(rs.buf) {
		rs.buf[rs.n] = r
		rs.n++
		return
	}
	rs.more = append(rs.more, r)
}

func (rs *reasons) len() int { return rs.n + len(rs.more) }

func (rs *reasons) at(i int) *Reason {
	if i < rs.n {
		return &rs.buf[i]
	}
	return &rs.more[i-rs.n]
}

func (rs *reasons) has(c Code) bool {
	for i := range rs.len() {
		if rs.at(i).Code == c {
			return true
		}
	}
	return false
}

func (rs *reasons) fatal() bool {
	for i := range rs.len() {
		if rs.at(i).Severity == Fatal {
			return true
		}
	}
	return false
}

// decode decodes id's PASSporT, checking what needs neither the call nor the
// certificate. It returns false when the PASSporT cannot be read at all.
func decode(id Identity, d *decoded, rs *reasons) bool {
	h, c, sig := id.Parts()
	jws := []byte(id.JWS)
	d.signing = jws[:len(h)+1+len(c)]
	d.sig = jws[len(h)+1+len(c)+1:]
	d.p.Sig = sig
	enc := base64.RawURLEncoding
	buf := make([]byte, enc.DecodedLen(len(h))+enc.DecodedLen(len(c)))
	raw, ok := b64(buf, jws[:len(h)])
	if !ok {
		rs.add(fatal(CodeMalformed, "PASSporT header is not base64url"))
		return false
	}
	// Decoded through a local: a pointer into d would move the caller's
	// work array to the heap.
	var jh jwsHeader
	if err := json.Unmarshal(raw, &jh); err != nil {
		rs.add(fatal(CodeMalformed, "PASSporT header is not a JSON object of strings"))
		return false
	}
	d.hdr = jh
	raw, ok = b64(buf[len(raw):], jws[len(h)+1:len(h)+1+len(c)])
	if !ok {
		rs.add(fatal(CodeMalformed, "PASSporT claims are not base64url"))
		return false
	}
	var cl claims
	if err := json.Unmarshal(raw, &cl); err != nil {
		rs.add(fatal(CodeMalformed, "PASSporT claims are not a JSON object"))
		return false
	}
	hdr := &d.hdr
	p := &d.p
	p.X5U = hdr.X5U
	p.PPT = hdr.PPT
	switch {
	case id.PPT != "" && hdr.PPT != "" && id.PPT != hdr.PPT:
		rs.add(fatal(CodeMalformed, "ppt parameter differs from the PASSporT header's ppt"))
	case hdr.PPT == "":
		p.PPT = id.PPT
		if id.PPT != "" {
			rs.add(fatal(CodeMalformed, "ppt parameter given but the PASSporT header has no ppt"))
		}
	}
	if hdr.Alg != "ES256" {
		rs.add(fatal(CodeUnsupportedAlg, "PASSporT alg is "+quoteShort(hdr.Alg)+", not ES256"))
	} else if id.Alg != "" && id.Alg != "ES256" {
		rs.add(fatal(CodeUnsupportedAlg, "alg parameter is "+quoteShort(id.Alg)+", not ES256"))
	}
	if hdr.Typ != "" && hdr.Typ != "passport" {
		rs.add(warn(CodeMalformed, "PASSporT typ is "+quoteShort(hdr.Typ)+", not passport"))
	}
	switch {
	case hdr.X5U == "" && id.Info == "":
		rs.add(fatal(CodeMalformed, "no x5u in the PASSporT header and no info parameter"))
	case hdr.X5U == "":
		p.X5U = id.Info
		rs.add(warn(CodeMalformed, "no x5u in the PASSporT header; info parameter used"))
	case id.Info == "":
		rs.add(warn(CodeInfoMismatch, "no info parameter; x5u used"))
	case id.Info != hdr.X5U:
		rs.add(fatal(CodeInfoMismatch, "info parameter differs from the PASSporT's x5u"))
	}

	iat, ok := parseIAT(cl.IAT, rs)
	if !ok {
		rs.add(fatal(CodeMalformed, "iat claim missing or not a NumericDate"))
	}
	p.IAT = iat

	tnRequired := p.PPT == PPTShaken || p.PPT == PPTDiv
	p.OrigTN = origTN(cl.Orig, tnRequired, rs)
	p.DestTN = tnList(cl.Dest, "dest", tnRequired, rs)
	if p.PPT == PPTDiv {
		p.DivTN = tnList(cl.Div, "div", true, rs)
	}
	if p.PPT == PPTShaken {
		switch cl.Attest {
		case "A", "B", "C":
			p.Attest = cl.Attest
		case "":
			rs.add(fatal(CodeMalformed, "attest claim missing"))
		default:
			rs.add(fatal(CodeMalformed, "attest is "+quoteShort(cl.Attest)+", not A, B or C"))
		}
		p.OrigID = cl.OrigID
		if cl.OrigID == "" {
			rs.add(warn(CodeMalformed, "origid claim missing"))
		}
	}
	return true
}

func parseIAT(raw json.RawMessage, rs *reasons) (int64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		raw = raw[1 : len(raw)-1]
		rs.add(warn(CodeMalformed, "iat is a JSON string, not a number"))
	}
	if len(raw) == 0 || len(raw) > 18 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || n <= 0 {
		f, ferr := strconv.ParseFloat(string(raw), 64)
		if ferr != nil || f <= 0 || f > 1e17 {
			return 0, false
		}
		n = int64(f)
	}
	return n, true
}

// origTN decodes the orig claim: {"tn":"..."}. A JSON string wrapping that
// object (libstirshaken's test PASSporT) is decoded and flagged.
func origTN(raw json.RawMessage, required bool, rs *reasons) string {
	obj, ok := tnObj(raw, "orig", rs)
	if !ok {
		if required {
			rs.add(fatal(CodeMalformed, "orig claim missing or not an object"))
		}
		return ""
	}
	tn := bytes.TrimSpace(obj.TN)
	if len(tn) == 0 || bytes.Equal(tn, []byte("null")) {
		if required {
			rs.add(fatal(CodeMalformed, "orig has no tn"))
		}
		return ""
	}
	var s string
	if tn[0] == '[' {
		var arr []string
		if json.Unmarshal(tn, &arr) != nil || len(arr) != 1 {
			rs.add(fatal(CodeMalformed, "orig.tn is not a string"))
			return ""
		}
		rs.add(warn(CodeNonstandardTN, "orig.tn is an array, not a string"))
		s = arr[0]
	} else if json.Unmarshal(tn, &s) != nil {
		rs.add(fatal(CodeMalformed, "orig.tn is not a string"))
		return ""
	}
	n, ok := normalizeTN(s)
	if !ok {
		rs.add(fatal(CodeMalformed, "orig.tn is not a telephone number"))
	}
	return n
}

// tnList decodes a dest or div claim: {"tn":["..."]}; a bare string for tn
// is accepted and flagged.
func tnList(raw json.RawMessage, name string, required bool, rs *reasons) []string {
	obj, ok := tnObj(raw, name, rs)
	if !ok {
		if required {
			rs.add(fatal(CodeMalformed, name+" claim missing or not an object"))
		}
		return nil
	}
	tn := bytes.TrimSpace(obj.TN)
	if len(tn) == 0 || bytes.Equal(tn, []byte("null")) {
		if required {
			rs.add(fatal(CodeMalformed, name+" has no tn"))
		}
		return nil
	}
	var arr []string
	if tn[0] == '"' {
		var s string
		if json.Unmarshal(tn, &s) != nil {
			rs.add(fatal(CodeMalformed, name+".tn is not a string"))
			return nil
		}
		if name == "dest" {
			rs.add(warn(CodeNonstandardTN, "dest.tn is a string, not an array"))
		}
		arr = []string{s}
	} else if json.Unmarshal(tn, &arr) != nil || len(arr) == 0 {
		rs.add(fatal(CodeMalformed, name+".tn is not an array of strings"))
		return nil
	}
	if len(arr) > 64 {
		rs.add(fatal(CodeMalformed, name+".tn has more than 64 numbers"))
		return nil
	}
	out := arr[:0]
	for _, s := range arr {
		n, ok := normalizeTN(s)
		if !ok {
			rs.add(fatal(CodeMalformed, name+".tn holds something that is not a telephone number"))
			continue
		}
		out = append(out, n)
	}
	return out
}

// tnObj decodes an orig/dest/div claim into its object, unwrapping a JSON
// string that contains the object (flagged fatal: RFC 8225 section 5.2.1
// requires an object, and a signer that gets this wrong is not conformant).
func tnObj(raw json.RawMessage, name string, rs *reasons) (tnObject, bool) {
	var obj tnObject
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return obj, false
	}
	if raw[0] == '"' {
		var inner string
		if json.Unmarshal(raw, &inner) != nil || json.Unmarshal([]byte(inner), &obj) != nil {
			return obj, false
		}
		rs.add(fatal(CodeNonstandardTN, name+" is a JSON string wrapping an object, not an object"))
		return obj, true
	}
	if json.Unmarshal(raw, &obj) != nil {
		return obj, false
	}
	return obj, true
}

// normalizeTN keeps the digits of a telephone number, dropping a leading
// '+' and the visual separators RFC 3966 allows ("-", ".", "(", ")", space).
// It reports false for anything else (letters, '*', '#') or no digits.
func normalizeTN(s string) (string, bool) {
	clean := true
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			clean = false
			break
		}
	}
	if clean {
		return s, len(s) > 0 && len(s) <= 32
	}
	var b [32]byte
	n := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9':
			if n == len(b) {
				return "", false
			}
			b[n] = c
			n++
		case c == '+' && i == 0, c == '-', c == '.', c == '(', c == ')', c == ' ':
		default:
			return "", false
		}
	}
	return string(b[:n]), n > 0
}

// sameTN reports whether a normalised PASSporT number equals the call's
// number, which may carry a leading '+' or separators.
func sameTN(passport, call string) bool {
	if len(call) > 0 && call[0] == '+' && call[1:] == passport {
		return true
	}
	if call == passport {
		return true
	}
	n, ok := normalizeTN(call)
	return ok && n == passport
}

var errSigLen = errors.New("signature is not 64 bytes (R||S)")

// verifyES256 checks a JWS ES256 signature (RFC 7518 section 3.4: R||S,
// 32 bytes each, base64url) over signing with pub.
func verifyES256(pub *ecdsa.PublicKey, signing, sig []byte) (bool, error) {
	var raw [66]byte
	if base64.RawURLEncoding.DecodedLen(len(sig)) > len(raw) {
		return false, errSigLen
	}
	n, err := base64.RawURLEncoding.Decode(raw[:], sig)
	if err != nil || n != 64 {
		return false, errSigLen
	}
	digest := sha256.Sum256(signing)
	var der [72]byte
	return ecdsa.VerifyASN1(pub, digest[:], derSig(der[:0], raw[:32], raw[32:64])), nil
}

// derSig appends the ASN.1 DER ECDSA-Sig-Value of r and s to dst.
func derSig(dst, r, s []byte) []byte {
	r, s = trimInt(r), trimInt(s)
	rl, sl := len(r)+int(r[0]>>7), len(s)+int(s[0]>>7)
	dst = append(dst, 0x30, byte(2+rl+2+sl), 0x02, byte(rl))
	if r[0]&0x80 != 0 {
		dst = append(dst, 0)
	}
	dst = append(dst, r...)
	dst = append(dst, 0x02, byte(sl))
	if s[0]&0x80 != 0 {
		dst = append(dst, 0)
	}
	return append(dst, s...)
}

// trimInt drops leading zero bytes, keeping at least one.
func trimInt(b []byte) []byte {
	for len(b) > 1 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

// b64 decodes base64url without padding (tolerating padding) into buf,
// which must be large enough.
func b64(buf, s []byte) ([]byte, bool) {
	for len(s) > 0 && s[len(s)-1] == '=' {
		s = s[:len(s)-1]
	}
	if base64.RawURLEncoding.DecodedLen(len(s)) > len(buf) {
		return nil, false
	}
	n, err := base64.RawURLEncoding.Decode(buf, s)
	if err != nil {
		return nil, false
	}
	return buf[:n], true
}

func quoteShort(s string) string {
	if len(s) > 16 {
		s = s[:16] + "..."
	}
	return strconv.Quote(s)
}
