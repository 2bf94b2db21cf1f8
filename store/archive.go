package store

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/ringfence/ringfence/call"
)

// Archive is the metadata storage of the compliance archive (see package
// archive): the directory of a tenant's users and their contacts, and the
// archived items (call records, SMS messages, recordings) with their legal
// holds, retention settings and resumable upload sessions. Media bytes are
// not here: a recording's item names its blob (BlobID), which the node
// keeps in its blob store.
//
// Nothing personal is stored in the clear. Names, numbers, device types,
// parties and texts arrive sealed by the node (the Sealed fields and
// ArchiveUpload.State, stored byte for byte and never copied elsewhere);
// numbers are found by keyed pseudonyms and texts by ArchiveTokens. Ids,
// kinds, directions, times, durations, results, sizes and digests are in
// the clear so they can be queried; they must carry no personal data.
//
// Implementations are safe for concurrent use. Every method is scoped by
// tenant: a row of another tenant is NotFound or absent. A write naming an
// unknown or offboarded tenant is NotFound. Page limits follow the package
// rule (below 1 means 100, capped at 1000). Times read back in UTC (the
// PostgreSQL backend keeps microseconds). Archive is not part of Store:
// a backend's *DB implements both, and the archive's consumers ask for it
// alone. Privacy.DeleteTenantData deletes the tenant's archive rows too.
type Archive interface {
	// PutArchiveUser inserts a directory user or replaces a stored one's
	// Sealed and Numbers (the set of number pseudonyms is replaced whole).
	// CreatedAt and OffboardedAt of a stored user are kept; of a new one,
	// CreatedAt is stored and OffboardedAt ignored. Invalid without an id or
	// with more than MaxArchiveNumbers numbers.
	PutArchiveUser(ctx context.Context, u ArchiveUser) error
	// ArchiveUser returns one user with its numbers; NotFound if absent.
	ArchiveUser(ctx context.Context, tenant, id string) (ArchiveUser, error)
	// ArchiveUsers returns up to limit users ordered by id, with ids above
	// after ("" from the start), offboarded ones included.
	ArchiveUsers(ctx context.Context, tenant, after string, limit int) ([]ArchiveUser, error)
	// ArchiveUsersByNumber returns the users one of whose numbers has the
	// pseudonym, ordered by id (empty if none).
	ArchiveUsersByNumber(ctx context.Context, tenant string, pseudonym []byte) ([]ArchiveUser, error)
	// OffboardArchiveUser marks a user offboarded at `at` (the store's
	// clock if zero). Its items, contacts and directory entry are kept
	// until retention removes them.
	// NotFound if absent, Conflict if offboarded already.
	OffboardArchiveUser(ctx context.Context, tenant, id string, at time.Time) error

	// PutArchiveContacts replaces, in one transaction, the contact list of
	// a user with contacts (nil or empty clears it). Each contact's Tenant
	// and UserID are taken from the arguments. NotFound if the user is
	// absent; Invalid for a contact without an id, a repeated id, more than
	// MaxArchiveNumbers numbers on a contact or more than MaxArchiveContacts
	// contacts.
	PutArchiveContacts(ctx context.Context, tenant, userID string, contacts []ArchiveContact) error
	// ArchiveContacts returns a user's contacts ordered by id (empty if
	// none or the user is absent).
	ArchiveContacts(ctx context.Context, tenant, userID string) ([]ArchiveContact, error)

	// PutArchiveItem stores an item, idempotently by its client id: if the
	// tenant has an item with it.ClientID, it returns that stored item and
	// created false, whatever else it holds; otherwise it stores it and
	// returns it as stored, created true. Conflict if it.ID is taken by an
	// item with another client id; Invalid if CheckArchiveItem fails.
	PutArchiveItem(ctx context.Context, it ArchiveItem) (stored ArchiveItem, created bool, err error)
	// ArchiveItem returns one item with its parties and tokens; NotFound if
	// absent.
	ArchiveItem(ctx context.Context, tenant, id string) (ArchiveItem, error)
	// SearchArchive returns the items matching q, newest StartedAt first
	// (then id descending); Invalid for an unknown kind or direction or
	// more than MaxArchiveQueryTokens tokens.
	SearchArchive(ctx context.Context, tenant string, q ArchiveQuery) ([]ArchiveItem, error)
	// ArchiveDayItems returns up to limit items of one chain day
	// (YYYY-MM-DD), ordered by id, with ids above after: the order in which
	// the node hashes a day's items into the audit chain. Invalid for a
	// malformed day.
	ArchiveDayItems(ctx context.Context, tenant, day, after string, limit int) ([]ArchiveItem, error)

	// PutArchiveHold places a legal hold; Conflict if its id is stored,
	// Invalid if CheckArchiveHold fails.
	PutArchiveHold(ctx context.Context, h ArchiveHold) error
	// LiftArchiveHold lifts a hold, recording who and when (the store's
	// clock if at is zero); NotFound if absent, Conflict if lifted already.
	LiftArchiveHold(ctx context.Context, tenant, id, by string, at time.Time) error
	// ArchiveHolds returns the tenant's holds ordered by id: only those not
	// lifted if activeOnly.
	ArchiveHolds(ctx context.Context, tenant string, activeOnly bool) ([]ArchiveHold, error)

	// PutArchiveRetention stores the tenant's archive retention settings
	// (JSON, opaque to the store: per-kind periods and per-user
	// overrides), replacing any stored.
	PutArchiveRetention(ctx context.Context, tenant string, settings []byte) error
	// ArchiveRetention returns the stored settings; nil, no error, when none
	// are stored.
	ArchiveRetention(ctx context.Context, tenant string) ([]byte, error)

	// PurgeArchive deletes, in one transaction, up to p.Limit items of
	// p.Kind that started before p.Before, oldest first, with their parties
	// and tokens, sparing every item an active hold covers (see
	// ArchiveHold.Covers; the holds are read in the same transaction) and
	// every item whose user is in p.ExceptUsers; if p.Users is non-empty
	// only those users' items are candidates. It returns how many items it
	// deleted and the non-empty blob ids among them, so the node deletes
	// those blobs. Call it until Items is below the limit. Invalid for an
	// unknown kind, a zero Before or more than MaxArchivePurgeUsers users
	// in Users or ExceptUsers.
	PurgeArchive(ctx context.Context, tenant string, p ArchivePurge) (ArchivePurged, error)

	// PutArchiveUpload inserts an upload session or updates a stored one's
	// State, Offset and UpdatedAt (its ItemID, ClientID and CreatedAt are
	// kept). Conflict if another session of the tenant has its client id,
	// or if the update would move Offset backwards (two writers of one
	// upload); Invalid without an id, client id or UpdatedAt, or with a
	// negative offset.
	PutArchiveUpload(ctx context.Context, u ArchiveUpload) error
	// ArchiveUpload returns one session; NotFound if absent.
	ArchiveUpload(ctx context.Context, tenant, id string) (ArchiveUpload, error)
	// ArchiveUploadByClient returns the session of a client id, so a client
	// that lost the session id can resume; NotFound if absent.
	ArchiveUploadByClient(ctx context.Context, tenant, clientID string) (ArchiveUpload, error)
	// ArchiveUploads returns up to limit sessions last updated before
	// `before`, oldest update first: abandoned uploads to clean up.
	ArchiveUploads(ctx context.Context, tenant string, before time.Time, limit int) ([]ArchiveUpload, error)
	// DeleteArchiveUpload removes a session; NotFound if absent.
	DeleteArchiveUpload(ctx context.Context, tenant, id string) error
}

// Bounds on what one write or query may carry (Invalid beyond).
const (
	MaxArchiveNumbers     = 64    // number pseudonyms of one user or contact
	MaxArchiveContacts    = 10000 // contacts of one PutArchiveContacts
	MaxArchiveParties     = 256   // party pseudonyms of one item
	MaxArchiveTokens      = 10000 // text tokens of one item
	MaxArchiveQueryTokens = 32    // tokens of one ArchiveQuery
	MaxArchivePurgeUsers  = 10000 // users in ArchivePurge.Users or ExceptUsers
)

// Archive item kinds.
const (
	ArchiveCall      = "call"      // a call record
	ArchiveSMS       = "sms"       // an SMS message
	ArchiveRecording = "recording" // an audio recording of a call (BlobID, CallID)
)

// Archive item directions.
const (
	ArchiveInbound  = "inbound"
	ArchiveOutbound = "outbound"
)

// Hold scopes of ArchiveHold.
const (
	ArchiveHoldUser  = "user"  // a user's items (UserID; From and To narrow it)
	ArchiveHoldCase  = "case"  // what a case needs (CaseID; UserID, From, To narrow it)
	ArchiveHoldRange = "range" // items started in [From, To) (UserID narrows it)
)

// ArchiveUser is a user of the tenant's directory.
type ArchiveUser struct {
	Tenant       string
	ID           string   // the client's user id (not personal data)
	Sealed       []byte   // sealed JSON: name, company, business and personal numbers, device type
	Numbers      [][]byte // pseudonyms of the user's numbers, for lookup; read back sorted
	OffboardedAt time.Time
	CreatedAt    time.Time
}

// ArchiveContact is one entry of a user's contact list.
type ArchiveContact struct {
	Tenant    string
	UserID    string
	ID        string   // the client's contact id
	Sealed    []byte   // sealed JSON: name, numbers
	Numbers   [][]byte // pseudonyms of the contact's numbers; read back sorted
	CreatedAt time.Time
}

// ArchiveItem is one archived call record, SMS message or recording.
type ArchiveItem struct {
	Tenant    string
	ID        string // the node's id (call.IDs)
	ClientID  string // the client's message id: PutArchiveItem is idempotent by it
	Kind      string // ArchiveCall, ArchiveSMS or ArchiveRecording
	UserID    string // the directory user it belongs to
	Direction string // ArchiveInbound or ArchiveOutbound
	StartedAt time.Time
	Duration  time.Duration // calls and recordings; 0 otherwise
	Result    string        // a call's connection result; "" otherwise

	// Parties are the pseudonyms of the other parties' numbers, Tokens
	// the ArchiveTokens of an SMS text. Both read back sorted and without
	// repeats.
	Parties [][]byte
	Tokens  [][]byte

	Sealed    []byte // sealed canonical JSON of the item: parties' numbers, an SMS's text, ...
	BlobID    string // a recording's media blob; "" otherwise
	CallID    string // a recording's call item id; "" otherwise (not checked by the store)
	Size      int64  // a recording's media size in bytes
	SHA256    string // lower-case hex SHA-256 of the decrypted media or of the canonical item JSON
	ChainDay  string // YYYY-MM-DD: the day whose audit chain link covers the item
	CreatedAt time.Time
}

// ArchiveQuery selects items. Zero fields do not filter.
type ArchiveQuery struct {
	UserID    string
	Party     []byte // a party pseudonym the item must have
	Direction string
	Kind      string
	From, To  time.Time // StartedAt in [From, To)
	Tokens    [][]byte  // ArchiveTokens of the search text: the item must have every one

	// Paging: only items after (BeforeStartedAt, BeforeID) in the result
	// order, i.e. the StartedAt and ID of the last item of the previous
	// page. Ignored while BeforeID is "".
	BeforeStartedAt time.Time
	BeforeID        string
	Limit           int // 0 => 100; at most 1000
}

// ArchiveHold is a legal hold on archive items. While active it keeps the
// items it covers from PurgeArchive.
type ArchiveHold struct {
	Tenant   string
	ID       string
	Scope    string // ArchiveHoldUser, ArchiveHoldCase or ArchiveHoldRange
	UserID   string
	CaseID   string
	From, To time.Time // zero: unbounded on that side
	Reason   string
	PlacedBy string
	PlacedAt time.Time
	LiftedBy string    // "" while active
	LiftedAt time.Time // zero while active
}

// Active reports whether the hold has not been lifted.
func (h ArchiveHold) Active() bool { return h.LiftedAt.IsZero() && h.LiftedBy == "" }

// Covers reports whether the hold, if active, keeps an item of user started
// at `started`: every hold covers the items whose user is its UserID (any
// user when "") and that started in [From, To) (a zero bound is open). So
// a case hold naming neither user nor range covers the whole archive.
func (h ArchiveHold) Covers(user string, started time.Time) bool {
	return (h.UserID == "" || h.UserID == user) &&
		(h.From.IsZero() || !started.Before(h.From)) &&
		(h.To.IsZero() || started.Before(h.To))
}

// ArchivePurge says what PurgeArchive deletes.
type ArchivePurge struct {
	Kind        string    // ArchiveCall, ArchiveSMS or ArchiveRecording
	Before      time.Time // items started before it
	Users       []string  // only these users' items; nil: any user's
	ExceptUsers []string  // never these users' items (e.g. users with an override purged on their own)
	Limit       int       // 0 => 100; at most 1000
}

// ArchivePurged is what PurgeArchive deleted.
type ArchivePurged struct {
	Items   int64
	BlobIDs []string // the deleted recordings' blobs, ordered by item id
}

// ArchiveUpload is a resumable upload session of a recording. It survives
// restarts: the node reloads it by id (or client id) and resumes at Offset.
type ArchiveUpload struct {
	Tenant    string
	ID        string
	ItemID    string // the item the upload will create
	ClientID  string // the client's message id of that item
	State     []byte // sealed, opaque to the store (hash state, blob handle, metadata)
	Offset    int64  // bytes received and durable
	CreatedAt time.Time
	UpdatedAt time.Time
}

// CheckArchiveItem returns an Invalid error if it breaks PutArchiveItem's
// rules on its own: an id, a client id, a user id, a known kind and
// direction, a StartedAt, a non-negative duration and size, SHA256 as 64
// lower-case hex digits, ChainDay as YYYY-MM-DD, a BlobID for a recording
// only, and at most MaxArchiveParties parties and MaxArchiveTokens tokens,
// none empty. Backends call it first.
func CheckArchiveItem(it ArchiveItem) error {
	switch {
	case it.ID == "":
		return call.Errorf(call.Invalid, "archive item: id required")
	case it.ClientID == "":
		return call.Errorf(call.Invalid, "archive item: client id required")
	case it.UserID == "":
		return call.Errorf(call.Invalid, "archive item: user id required")
	case it.StartedAt.IsZero():
		return call.Errorf(call.Invalid, "archive item: start time required")
	case it.Duration < 0 || it.Size < 0:
		return call.Errorf(call.Invalid, "archive item: duration and size must not be negative")
	case it.BlobID != "" && it.Kind != ArchiveRecording:
		return call.Errorf(call.Invalid, "archive item: only a recording has a blob")
	case len(it.Parties) > MaxArchiveParties:
		return call.Errorf(call.Invalid, "archive item: at most %d parties", MaxArchiveParties)
	case len(it.Tokens) > MaxArchiveTokens:
		return call.Errorf(call.Invalid, "archive item: at most %d tokens", MaxArchiveTokens)
	}
	if err := CheckArchiveKind(it.Kind); err != nil {
		return err
	}
	if err := CheckArchiveDirection(it.Direction); err != nil {
		return err
	}
	if err := CheckArchiveDay(it.ChainDay); err != nil {
		return err
	}
	if len(it.SHA256) != 64 || strings.ToLower(it.SHA256) != it.SHA256 {
		return call.Errorf(call.Invalid, "archive item: sha256 must be 64 lower-case hex digits")
	}
	if _, err := hex.DecodeString(it.SHA256); err != nil {
		return call.Errorf(call.Invalid, "archive item: sha256 must be 64 lower-case hex digits")
	}
	for _, p := range append(slices.Clip(it.Parties), it.Tokens...) {
		if len(p) == 0 {
			return call.Errorf(call.Invalid, "archive item: empty party pseudonym or token")
		}
	}
	return nil
}

// CheckArchiveKind returns Invalid unless kind is an item kind.
func CheckArchiveKind(kind string) error {
	switch kind {
	case ArchiveCall, ArchiveSMS, ArchiveRecording:
		return nil
	}
	return call.Errorf(call.Invalid, "archive: kind must be %q, %q or %q", ArchiveCall, ArchiveSMS, ArchiveRecording)
}

// CheckArchiveDirection returns Invalid unless d is a direction.
func CheckArchiveDirection(d string) error {
	if d == ArchiveInbound || d == ArchiveOutbound {
		return nil
	}
	return call.Errorf(call.Invalid, "archive: direction must be %q or %q", ArchiveInbound, ArchiveOutbound)
}

// CheckArchiveDay returns Invalid unless day is a date as YYYY-MM-DD.
func CheckArchiveDay(day string) error {
	if t, err := time.Parse(time.DateOnly, day); err != nil || t.Format(time.DateOnly) != day {
		return call.Errorf(call.Invalid, "archive: chain day must be YYYY-MM-DD")
	}
	return nil
}

// CheckArchiveQuery returns Invalid for a query with an unknown kind or
// direction or more than MaxArchiveQueryTokens tokens.
func CheckArchiveQuery(q ArchiveQuery) error {
	if q.Kind != "" {
		if err := CheckArchiveKind(q.Kind); err != nil {
			return err
		}
	}
	if q.Direction != "" {
		if err := CheckArchiveDirection(q.Direction); err != nil {
			return err
		}
	}
	if len(q.Tokens) > MaxArchiveQueryTokens {
		return call.Errorf(call.Invalid, "archive query: at most %d search words", MaxArchiveQueryTokens)
	}
	return nil
}

// CheckArchiveHold returns Invalid unless h has an id and a known scope
// with what it names: a user hold a UserID, a case hold a CaseID, a range
// hold both From and To; and From before To when both are set.
func CheckArchiveHold(h ArchiveHold) error {
	switch {
	case h.ID == "":
		return call.Errorf(call.Invalid, "archive hold: id required")
	case h.Scope == ArchiveHoldUser && h.UserID == "":
		return call.Errorf(call.Invalid, "archive hold: a user hold needs a user id")
	case h.Scope == ArchiveHoldCase && h.CaseID == "":
		return call.Errorf(call.Invalid, "archive hold: a case hold needs a case id")
	case h.Scope == ArchiveHoldRange && (h.From.IsZero() || h.To.IsZero()):
		return call.Errorf(call.Invalid, "archive hold: a range hold needs from and to")
	case h.Scope != ArchiveHoldUser && h.Scope != ArchiveHoldCase && h.Scope != ArchiveHoldRange:
		return call.Errorf(call.Invalid, "archive hold: scope must be user, case or range")
	case !h.From.IsZero() && !h.To.IsZero() && !h.From.Before(h.To):
		return call.Errorf(call.Invalid, "archive hold: from must be before to")
	}
	return nil
}

// CheckArchivePurge returns Invalid for a purge with an unknown kind, a zero
// Before or too many users.
func CheckArchivePurge(p ArchivePurge) error {
	if err := CheckArchiveKind(p.Kind); err != nil {
		return err
	}
	switch {
	case p.Before.IsZero():
		return call.Errorf(call.Invalid, "archive purge: before required")
	case len(p.Users) > MaxArchivePurgeUsers || len(p.ExceptUsers) > MaxArchivePurgeUsers:
		return call.Errorf(call.Invalid, "archive purge: at most %d users", MaxArchivePurgeUsers)
	}
	return nil
}

// CheckArchiveUpload returns Invalid for a session without an id, client
// id or UpdatedAt, or with a negative offset.
func CheckArchiveUpload(u ArchiveUpload) error {
	switch {
	case u.ID == "" || u.ClientID == "":
		return call.Errorf(call.Invalid, "archive upload: id and client id required")
	case u.UpdatedAt.IsZero():
		return call.Errorf(call.Invalid, "archive upload: updated time required")
	case u.Offset < 0:
		return call.Errorf(call.Invalid, "archive upload: offset must not be negative")
	}
	return nil
}

// CheckArchiveNumbers returns Invalid for more than MaxArchiveNumbers
// pseudonyms or an empty one; what names the owner for the message.
func CheckArchiveNumbers(what string, ps [][]byte) error {
	if len(ps) > MaxArchiveNumbers {
		return call.Errorf(call.Invalid, "%s: at most %d numbers", what, MaxArchiveNumbers)
	}
	for _, p := range ps {
		if len(p) == 0 {
			return call.Errorf(call.Invalid, "%s: empty number pseudonym", what)
		}
	}
	return nil
}

// ArchiveTokenSize is the length of one text token.
const ArchiveTokenSize = 16

// ArchiveTokens returns the search tokens of a text: each distinct word
// (a maximal run of letters and digits, lower-cased) as HMAC-SHA-256 under
// key truncated to ArchiveTokenSize bytes, sorted. The node stores an SMS's
// tokens with its item and searches with the tokens of the search words, so
// the store finds texts without holding them.
//
// key must be the tenant's own secret, separate from its number pseudonym
// key (a token must never equal a number's pseudonym). What the tokens leak
// to whoever reads the store: which items share a word (equal words give
// equal tokens within a tenant), how many distinct words an item has, and
// how often each (unknown) word occurs across the archive, which invites
// frequency analysis. Without the key no word can be confirmed; with it,
// any guessed word can be tested, as with the number pseudonyms.
func ArchiveTokens(key []byte, text string) [][]byte {
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	out := make([][]byte, 0, len(words))
	for _, w := range words {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(w))
		out = append(out, m.Sum(nil)[:ArchiveTokenSize])
	}
	return sortedSet(out)
}

// sortedSet sorts byte strings and drops repeats, in place.
func sortedSet(bs [][]byte) [][]byte {
	slices.SortFunc(bs, func(a, b []byte) int { return strings.Compare(string(a), string(b)) })
	return slices.CompactFunc(bs, func(a, b []byte) bool { return string(a) == string(b) })
}
