// Package consortium is the fraud-sharing consortium: members opt in,
// share fraud that a person confirmed, keyed by a consortium pseudonym of
// the number, and receive from the others how many distinct members
// reported a number, when and as what, never who.
//
// The rules (each has a test in this package):
//
//   - Membership: a tenant joins by accepting the consortium's current terms
//     version (recorded with the date) and can leave; leaving withdraws its
//     reports from the shared view.
//   - Standard of proof: only a person's confirmation enters: an analyst's
//     fraud label (SourceLabel, evidence "label:<record id>") or a report
//     filed through the API with a fraud type and an evidence reference
//     (SourceAPI). Markers and automatic verdicts have no way in.
//   - Pseudonymised sharing: entries are keyed by Pseudonym (HMAC-SHA-256
//     of the E.164 string under the consortium key). Member-facing reads
//     (Entry, OwnReports, MemberStatus, Lookup) never carry another
//     member's tenant id; a member sees its own reports in full.
//   - Reciprocity: only members that joined within the grace period or
//     reported within the contribution window receive the signal.
//   - Expiry: an entry lives Expiry (default 13 months) after its newest
//     report, never more than MaxExpiry (6 years); a member can withdraw
//     each of its reports at any time.
//   - Disputes: a member or the platform can dispute an entry; it stops
//     scoring at once (and on every node through the change feed) until
//     resolved: upheld restores it, accepted removes its reports.
//   - Every write and every read of an entry's detail calls the Audit hook.
package consortium

import (
	"strings"
	"time"
)

// Expiry bounds.
const (
	DefaultExpiry = 396 * 24 * time.Hour // 13 months of 30.5 days
	MaxExpiry     = 6 * 8766 * time.Hour // 6 years of 365.25 days
)

// FraudType is what kind of fraud a report confirms: one of a fixed set.
type FraudType string

// The fraud types. Append only: the set is part of the API and each has a
// bit in Types.
const (
	Impersonation   FraudType = "impersonation"    // posing as the bank, police, a supplier or a relative
	AccountTakeover FraudType = "account_takeover" // using a customer's account or credentials
	APP             FraudType = "app_scam"         // authorised push payment: the victim is talked into paying
	CardFraud       FraudType = "card_fraud"       // card details obtained or used over the phone
	IdentityTheft   FraudType = "identity_theft"   // collecting personal data to open or take over accounts
	Investment      FraudType = "investment_scam"  // fake investments, crypto, pensions
	Robocall        FraudType = "robocall"         // automated fraudulent campaign (phishing by IVR)
	OtherFraud      FraudType = "other"            // confirmed fraud of another kind
)

// FraudTypes lists the set in bit order.
var FraudTypes = []FraudType{Impersonation, AccountTakeover, APP, CardFraud, IdentityTheft, Investment, Robocall, OtherFraud}

// Valid reports whether t is in the set.
func (t FraudType) Valid() bool { return t.bit() != 0 }

func (t FraudType) bit() Types {
	for i, f := range FraudTypes {
		if f == t {
			return 1 << i
		}
	}
	return 0
}

// Types is a set of fraud types as a bitmask (bit i is FraudTypes[i]).
type Types uint16

// Has reports whether t is in the set.
func (s Types) Has(t FraudType) bool { return s&t.bit() != 0 }

// List returns the types in the set, in FraudTypes order.
func (s Types) List() []FraudType {
	var out []FraudType
	for i, f := range FraudTypes {
		if s&(1<<i) != 0 {
			out = append(out, f)
		}
	}
	return out
}

// String joins the types with commas ("impersonation,app_scam").
func (s Types) String() string {
	var b strings.Builder
	for i, f := range FraudTypes {
		if s&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(string(f))
		}
	}
	return b.String()
}

// Source says how a report was confirmed by a person.
type Source string

const (
	SourceLabel Source = "label" // an analyst's fraud label on a call record
	SourceAPI   Source = "api"   // a fraud report filed through the API
)

// Platform is the RaisedBy of a dispute the platform opened (acting on a
// data subject's rectification or erasure request).
const Platform = "platform"

// Dispute reason codes.
const (
	ReasonNotFraud      = "not_fraud"     // the member disputes that the number was used for fraud
	ReasonWrongNumber   = "wrong_number"  // the number was spoofed or mistyped
	ReasonRectification = "rectification" // a data subject's rectification request
	ReasonErasure       = "erasure"       // a data subject's erasure request
	ReasonOther         = "other"
)

var reasons = map[string]bool{ReasonNotFraud: true, ReasonWrongNumber: true, ReasonRectification: true, ReasonErasure: true, ReasonOther: true}
