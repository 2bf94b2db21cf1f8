package node

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

// CallFormat is the encoding of a call-history file (see ImportCalls).
type CallFormat string

const (
	CallsCSV    CallFormat = "csv"    // a header row naming the columns, then one call per row
	CallsNDJSON CallFormat = "ndjson" // one JSON object per line
)

// CallImportResult reports an import of call history.
type CallImportResult struct {
	// Imported counts the records this import committed.
	Imported int `json:"imported"`
	// AlreadyImported counts good rows whose record an earlier import
	// stored (same call_ref and started_at): skipped, not counted again.
	AlreadyImported int        `json:"already_imported"`
	RejectedCount   int        `json:"rejected_count"`
	Rejected        []RowError `json:"rejected"` // the first 1000, by line
}

const (
	// callImportBatch is the records committed per transaction.
	callImportBatch = 1000
	// importAppliance is the appliance id of imported records without one.
	importAppliance = "import"
	// maxNDJSONLine bounds one NDJSON line; a longer one is rejected.
	maxNDJSONLine = 64 << 10
	// maxFraudType bounds a label's fraud type, as Label does.
	maxFraudType = 64
	// knownSpan and knownMax bound the stored records that one query
	// reads to find rows imported before (see callImport.stored).
	knownSpan = time.Hour
	knownMax  = 50000
)

// callColumns are the columns of a call-history CSV and the fields of an
// NDJSON object (signalling ones under "signalling" there).
var callColumns = []string{
	"call_ref", "started_at", "caller", "dialled", "user_ref", "ingress_route", "appliance_id",
	"duration_s", "result", "egress_route", "label", "fraud_type",
	"from", "pai", "identity", "verstat", "privacy", "diversion", "user_agent",
}

// historyRow is one call of a history file, as written there.
type historyRow struct {
	CallRef      string         `json:"call_ref"`
	StartedAt    string         `json:"started_at"`
	Caller       string         `json:"caller"`
	Dialled      string         `json:"dialled"`
	UserRef      string         `json:"user_ref"`
	IngressRoute string         `json:"ingress_route"`
	ApplianceID  string         `json:"appliance_id"`
	DurationS    *float64       `json:"duration_s"`
	Result       string         `json:"result"`
	EgressRoute  string         `json:"egress_route"`
	Label        string         `json:"label"`
	FraudType    string         `json:"fraud_type"`
	Signalling   historySignals `json:"signalling"`
}

// historySignals is the signalling object of an NDJSON row, spelt as in
// POST /v1/screen: pai and identity take a string or an array of strings.
type historySignals struct {
	From      string    `json:"from"`
	PAI       oneOrMore `json:"pai"`
	Identity  oneOrMore `json:"identity"`
	Verstat   string    `json:"verstat"`
	Privacy   string    `json:"privacy"`
	Diversion string    `json:"diversion"`
	UserAgent string    `json:"user_agent"`
}

type oneOrMore []string

func (s *oneOrMore) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = oneOrMore{v}
		return nil
	}
	var v []string
	if err := json.Unmarshal(b, &v); err != nil {
		return errors.New("signalling: pai and identity must be a string or an array of strings")
	}
	*s = v
	return nil
}

// nextRow returns the next row of a history file and its line: a row, or
// a message saying why the row is rejected, or io.EOF at the end, or
// another error when the file cannot be read.
type nextRow func() (line int, row historyRow, reject string, err error)

// ImportCalls imports a tenant's call history so it can train a model on it
// before going live. r holds CSV (a header row naming the columns in any
// order; started_at, caller and dialled are required, the rest optional:
// call_ref, user_ref, ingress_route, appliance_id, duration_s, result,
// egress_route, label, fraud_type, from, pai, identity, verstat, privacy,
// diversion, user_agent) or NDJSON (one object per line with those names,
// the signalling ones in a "signalling" object as in POST /v1/screen).
//
// Each good row is screened by the engine as of its start time and stored
// as a record with its call-end data and review status (label fraud or
// genuine, or none), so training sees the verdicts and markers scoring
// would have given. Velocity windows are counted in event time: each row is
// evaluated, then observed, like a live call, so the file must be sorted by
// started_at; a row earlier than the good row before it is rejected. The
// import acts on nothing else: no list entry, consortium report or
// recorder write; a fraud-labelled row only stops its caller counting as a
// customer's number (its customer links are forgotten), as a fraud label
// does; new customer links learnt from the history are stored. Lists,
// routes and policy are read as they are now, not as they were.
//
// A row with a call_ref gets a record id derived from (tenant, call_ref,
// started_at), so importing a file again stores nothing twice: rows whose
// record exists are counted in AlreadyImported and not observed again. A
// row without one gets a fresh id, and a second import duplicates it.
//
// Bad rows are reported by line with the reason and skipped; a row is
// stored whole or not at all. Good rows are committed 1000 to a
// transaction; if a commit fails the import stops with the error, and
// Imported counts the rows committed before it. One audit entry
// (call.import, with the counts) records the import. Errors: Invalid for a
// bad header or format, NotFound for an unknown tenant, TooLarge after 4M
// rows; a failure to read r is returned wrapped.
func (n *Node) ImportCalls(ctx context.Context, tenant string, r io.Reader, format CallFormat) (CallImportResult, error) {
	if _, err := n.tenantKeys(tenant); err != nil {
		return CallImportResult{}, err
	}
	var next nextRow
	switch format {
	case CallsCSV:
		var err error
		if next, err = csvHistory(r); err != nil {
			return CallImportResult{}, err
		}
	case CallsNDJSON:
		next = ndjsonHistory(r)
	default:
		return CallImportResult{}, call.Errorf(call.Invalid, "format: must be csv or ndjson")
	}
	imp := &callImport{n: n, tenant: tenant, now: n.now(), seen: map[string]int{}, known: map[string]bool{}, knownMax: knownMax}
	imp.res.Rejected = []RowError{}
	for rows := 0; ; rows++ {
		line, row, reject, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return imp.finish(ctx, fmt.Errorf("reading %s: %w", format, err))
		}
		if rows >= maxImportRow {
			return imp.finish(ctx, call.Errorf(call.TooLarge, "at most %d rows per import; split the file", maxImportRow))
		}
		if reject != "" {
			imp.reject(line, reject)
			continue
		}
		if err := imp.add(ctx, line, row); err != nil {
			return imp.finish(ctx, err)
		}
	}
	return imp.finish(ctx, imp.flush(ctx))
}

// callImport is the state of one ImportCalls.
type callImport struct {
	n      *Node
	tenant string
	now    time.Time
	ids    call.IDs // ids for rows without call_ref: historical times, in order
	res    CallImportResult

	last     time.Time // started_at of the last good row
	lastLine int

	batch []store.Call
	seen  map[string]int // record id -> line, of the good rows at started_at last

	// The ids of the stored records starting in [knownFrom, knownTo), all
	// of them if complete (see stored).
	known              map[string]bool
	knownFrom, knownTo time.Time
	complete           bool
	knownMax           int          // knownMax, lowered by tests
	links              []store.Link // new customer links of the batch
	forget             [][]byte     // caller pseudonyms of fraud-labelled rows in the batch
}

func (imp *callImport) reject(line int, msg string) {
	imp.res.RejectedCount++
	if len(imp.res.Rejected) < maxRejected {
		imp.res.Rejected = append(imp.res.Rejected, RowError{Line: line, Message: msg})
	}
}

// add checks, screens and seals one row and adds it to the batch,
// committing the batch when full. It returns only errors that stop the
// import; a bad row is rejected.
func (imp *callImport) add(ctx context.Context, line int, row historyRow) error {
	n := imp.n
	c, msg := imp.build(row)
	if msg != "" {
		imp.reject(line, msg)
		return nil
	}
	if c.StartedAt.Before(imp.last) {
		imp.reject(line, fmt.Sprintf("started_at: earlier than line %d's; sort the file by started_at (velocity is counted in event time)", imp.lastLine))
		return nil
	}
	if c.StartedAt.After(imp.last) {
		clear(imp.seen) // a repeat has the same started_at: sorted, it follows at once
	}
	if c.Ref != "" {
		c.ID = historyID(imp.tenant, c.Ref, c.StartedAt)
		if first, ok := imp.seen[c.ID]; ok {
			imp.reject(line, fmt.Sprintf("call_ref: repeats line %d (same call_ref and started_at)", first))
			return nil
		}
		stored, err := imp.stored(ctx, c.ID, c.StartedAt)
		if err != nil {
			return err
		}
		if stored {
			imp.res.AlreadyImported++
			imp.seen[c.ID] = line
			imp.last, imp.lastLine = c.StartedAt, line
			return nil
		}
	} else {
		c.ID = imp.ids.Next(c.StartedAt)
	}
	live, shadow, err := n.engine.Evaluate(ctx, c)
	if err != nil {
		return err
	}
	c.Verdict, c.Shadow = live, shadow
	linked := n.engine.Observe(c)
	if c.End != nil {
		n.engine.ObserveEnd(c)
	}
	rec, err := n.sealCall(c)
	if err != nil {
		return err
	}
	if c.End != nil {
		rec.End = &store.End{Duration: c.End.Duration, Result: c.End.Result, Egress: c.End.Egress}
	}
	rec.Review, rec.FraudType = c.Review.Status, c.Review.FraudType
	if c.Review.Status == call.Fraud && c.Caller.Present() {
		n.engine.Unlink(imp.tenant, c.Caller)
		p := rec.CallerPseudonym
		kept := imp.links[:0]
		for _, l := range imp.links {
			if !bytes.Equal(l.CallerPseudonym, p) {
				kept = append(kept, l)
			}
		}
		imp.links = kept
		imp.forget = append(imp.forget, p)
	} else if linked {
		l, err := n.sealLink(imp.tenant, c.Caller, c.UserRef, c.StartedAt)
		if err != nil {
			return err
		}
		imp.links = append(imp.links, l)
	}
	imp.batch = append(imp.batch, rec)
	imp.seen[c.ID] = line
	imp.last, imp.lastLine = c.StartedAt, line
	if len(imp.batch) == callImportBatch {
		return imp.flush(ctx)
	}
	return nil
}

// stored reports whether the store holds a record with id, which starts
// at at. Rows come in time order, so it reads the ids of the records that
// start within knownSpan of at in one query and answers from them until a
// row starts later; only when that span holds more than knownMax records
// does it look each id up. Records this import commits meanwhile are
// not read back: a row repeating one has its started_at, and seen has it.
func (imp *callImport) stored(ctx context.Context, id string, at time.Time) (bool, error) {
	if at.Before(imp.knownFrom) || !at.Before(imp.knownTo) {
		imp.knownFrom, imp.knownTo = at, at.Add(knownSpan)
		clear(imp.known)
		imp.complete = false
		f := store.CallFilter{From: imp.knownFrom, To: imp.knownTo}
		for len(imp.known) < imp.knownMax {
			f.Limit = min(1000, imp.knownMax-len(imp.known))
			rows, err := imp.n.store.Calls(ctx, imp.tenant, f)
			if err != nil {
				return false, fmt.Errorf("read stored records: %w", err)
			}
			for _, r := range rows {
				imp.known[r.ID] = true
			}
			if len(rows) < f.Limit {
				imp.complete = true
				break
			}
			f.Before = rows[len(rows)-1].ID
		}
	}
	if imp.complete {
		return imp.known[id], nil
	}
	_, err := imp.n.store.Call(ctx, imp.tenant, id)
	switch call.ErrorCode(err) {
	case "":
		return true, nil
	case call.NotFound:
		return false, nil
	}
	return false, fmt.Errorf("look up record: %w", err)
}

// build turns a row into a call with its end and review, or says why the
// row is rejected.
func (imp *callImport) build(row historyRow) (*call.Call, string) {
	if row.StartedAt == "" {
		return nil, "started_at: required"
	}
	at, err := time.Parse(time.RFC3339Nano, row.StartedAt)
	if err != nil {
		return nil, "started_at: must be RFC 3339, such as 2026-11-26T09:30:00Z"
	}
	if row.Caller == "" {
		return nil, `caller: required; write "anonymous" for a withheld number`
	}
	s := row.Signalling
	in := Incoming{
		Tenant: imp.tenant, Ref: row.CallRef, Caller: row.Caller, Dialled: row.Dialled,
		StartedAt: at.UTC(), Ingress: row.IngressRoute, Appliance: row.ApplianceID, UserRef: row.UserRef,
		Signalling: call.Signalling{
			From: s.From, PAI: s.PAI, Identity: s.Identity, Verstat: s.Verstat,
			Privacy: s.Privacy, Diversion: s.Diversion, UserAgent: s.UserAgent,
		},
	}
	if in.Appliance == "" {
		in.Appliance = importAppliance
	}
	if err := in.Validate(imp.now); err != nil {
		return nil, call.ErrorMessage(err)
	}
	n := imp.n
	c := &call.Call{
		Tenant: imp.tenant, Ref: in.Ref,
		Caller:    n.engine.Number(imp.tenant, in.Caller),
		Dialled:   n.engine.Number(imp.tenant, in.Dialled),
		StartedAt: in.StartedAt, Ingress: in.Ingress, ApplianceID: in.Appliance,
		UserRef: in.UserRef, Signalling: in.Signalling,
		Review: call.Review{Status: call.Unreviewed},
	}
	if !c.Dialled.Present() {
		return nil, "dialled: not a telephone number"
	}
	end, msg := historyEnd(row)
	if msg != "" {
		return nil, msg
	}
	c.End = end
	switch strings.ToLower(row.Label) {
	case "":
	case "fraud":
		c.Review.Status = call.Fraud
	case "genuine":
		c.Review.Status = call.Genuine
	default:
		return nil, "label: must be fraud, genuine or empty"
	}
	switch {
	case len(row.FraudType) > maxFraudType:
		return nil, fmt.Sprintf("fraud_type: at most %d characters", maxFraudType)
	case !call.ValidText(row.FraudType):
		return nil, "fraud_type: must be UTF-8 text without NUL"
	case row.FraudType != "" && c.Review.Status != call.Fraud:
		return nil, "fraud_type: only with label fraud"
	}
	c.Review.FraudType = row.FraudType
	return c, ""
}

// historyEnd reads a row's call-end data: none when duration_s, result and
// egress_route are all empty. result is required with the others; so is
// duration_s for an answered call (others default to 0 s).
func historyEnd(row historyRow) (*call.End, string) {
	if row.DurationS == nil && row.Result == "" && row.EgressRoute == "" {
		return nil, ""
	}
	res := call.Result(row.Result)
	switch {
	case row.Result == "":
		return nil, "result: required with duration_s or egress_route"
	case !res.Valid():
		return nil, "result: must be answered, busy, no_answer, failed or rejected"
	case row.DurationS == nil && res == call.Answered:
		return nil, "duration_s: required for an answered call"
	case row.EgressRoute != "" && !call.ValidID(row.EgressRoute):
		return nil, "egress_route: must be 1-64 characters of letters, digits, '-', '_' or '.'"
	}
	end := &call.End{Result: res, Egress: row.EgressRoute}
	if d := row.DurationS; d != nil {
		if !(*d >= 0 && *d <= maxCallDuration.Seconds()) {
			return nil, "duration_s: must be between 0 and 604800"
		}
		end.Duration = time.Duration(math.Round(*d * float64(time.Second)))
	}
	return end, ""
}

// flush commits the batch: its records in one transaction, then the
// customer links it forgot and learnt.
func (imp *callImport) flush(ctx context.Context) error {
	if len(imp.batch) == 0 {
		return nil
	}
	n := imp.n
	if err := n.store.InsertCalls(ctx, imp.batch); err != nil {
		return fmt.Errorf("insert imported calls: %w", err)
	}
	imp.res.Imported += len(imp.batch)
	for _, p := range imp.forget {
		if err := n.store.DeleteLinks(ctx, imp.tenant, p); err != nil {
			return fmt.Errorf("forget links of a fraud caller: %w", err)
		}
	}
	if len(imp.links) > 0 {
		if err := n.store.PutLinks(ctx, imp.tenant, imp.links); err != nil {
			return fmt.Errorf("store customer links: %w", err)
		}
	}
	imp.batch, imp.links, imp.forget = imp.batch[:0], imp.links[:0], imp.forget[:0]
	return nil
}

// finish audits the import with its counts and returns the result and
// err (or the audit's error if err is nil).
func (imp *callImport) finish(ctx context.Context, err error) (CallImportResult, error) {
	detail := map[string]any{
		"imported": imp.res.Imported, "already_imported": imp.res.AlreadyImported,
		"rejected": imp.res.RejectedCount,
	}
	if err != nil {
		detail["failed"] = call.ErrorCode(err)
	}
	if aerr := imp.n.audit(ctx, imp.tenant, "call.import", "calls", detail); err == nil {
		err = aerr
	}
	return imp.res, err
}

// historyID derives the record id of an imported call: the start time's
// milliseconds (so ids sort by time like any record's) and 80 bits of
// SHA-256 over the tenant and call_ref.
func historyID(tenant, ref string, at time.Time) string {
	h := sha256.Sum256([]byte("ringfence call import\x00" + tenant + "\x00" + ref))
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(at.UnixMilli())<<16)
	copy(b[6:], h[:10])
	return encodeRecordID(b)
}

// encodeRecordID writes 128 bits as a record id: 26 characters of
// Crockford base32, as call.IDs does.
func encodeRecordID(b [16]byte) string {
	const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// csvHistory reads the header of a history CSV and returns its rows.
// Invalid if the header is missing, names an unknown column twice or
// lacks a required one.
func csvHistory(r io.Reader) (nextRow, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	var perr *csv.ParseError
	switch {
	case errors.Is(err, io.EOF):
		return nil, call.Errorf(call.Invalid, "file: empty; the first row must be a header naming the columns")
	case errors.As(err, &perr):
		return nil, call.Errorf(call.Invalid, "header: malformed CSV: %v", perr.Err)
	case err != nil:
		return nil, fmt.Errorf("reading CSV: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !knownColumn(name) {
			// Not echoed: a file without a header has a number here.
			return nil, call.Errorf(call.Invalid, "header: column %d is not one of %s; the first row must be a header naming the columns", i+1, strings.Join(callColumns, ", "))
		}
		if _, dup := col[name]; dup {
			return nil, call.Errorf(call.Invalid, "header: column %s appears twice", name)
		}
		col[name] = i
	}
	for _, req := range []string{"started_at", "caller", "dialled"} {
		if _, ok := col[req]; !ok {
			return nil, call.Errorf(call.Invalid, "header: column %s is required", req)
		}
	}
	width := len(header)
	return func() (int, historyRow, string, error) {
		rec, err := cr.Read()
		if errors.As(err, &perr) {
			return perr.Line, historyRow{}, "malformed CSV: " + perr.Err.Error(), nil
		}
		if err != nil {
			return 0, historyRow{}, "", err
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != width {
			return line, historyRow{}, fmt.Sprintf("has %d fields; the header has %d", len(rec), width), nil
		}
		get := func(name string) string {
			if i, ok := col[name]; ok {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		row := historyRow{
			CallRef: get("call_ref"), StartedAt: get("started_at"), Caller: get("caller"), Dialled: get("dialled"),
			UserRef: get("user_ref"), IngressRoute: get("ingress_route"), ApplianceID: get("appliance_id"),
			Result: get("result"), EgressRoute: get("egress_route"), Label: get("label"), FraudType: get("fraud_type"),
			Signalling: historySignals{
				From: get("from"), Verstat: get("verstat"), Privacy: get("privacy"),
				Diversion: get("diversion"), UserAgent: get("user_agent"),
			},
		}
		if v := get("pai"); v != "" {
			row.Signalling.PAI = oneOrMore{v}
		}
		if v := get("identity"); v != "" {
			row.Signalling.Identity = oneOrMore{v}
		}
		if v := get("duration_s"); v != "" {
			d, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return line, historyRow{}, "duration_s: must be a number of seconds", nil
			}
			row.DurationS = &d
		}
		return line, row, "", nil
	}, nil
}

func knownColumn(name string) bool {
	for _, c := range callColumns {
		if c == name {
			return true
		}
	}
	return false
}

// ndjsonHistory returns the rows of a history NDJSON file; blank lines are
// skipped.
func ndjsonHistory(r io.Reader) nextRow {
	br := bufio.NewReaderSize(r, 64<<10)
	line := 0
	return func() (int, historyRow, string, error) {
		for {
			b, tooLong, err := readLine(br, maxNDJSONLine)
			if err != nil && !errors.Is(err, io.EOF) {
				return 0, historyRow{}, "", err
			}
			if errors.Is(err, io.EOF) && len(b) == 0 && !tooLong {
				return 0, historyRow{}, "", io.EOF
			}
			line++
			if tooLong {
				return line, historyRow{}, fmt.Sprintf("longer than %d bytes", maxNDJSONLine), nil
			}
			if len(bytes.TrimSpace(b)) == 0 {
				continue
			}
			var row historyRow
			if msg := decodeHistoryLine(b, &row); msg != "" {
				return line, historyRow{}, msg, nil
			}
			return line, row, "", nil
		}
	}
}

// readLine reads one line (without its newline) of at most max bytes; a
// longer one is consumed and reported as tooLong. err is io.EOF after the
// last line, which may come with the line's bytes.
func readLine(br *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > max+1 {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		return line, tooLong, err
	}
}

// decodeHistoryLine decodes one NDJSON object strictly, returning a message
// naming the field when it cannot.
func decodeHistoryLine(b []byte, row *historyRow) string {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(row)
	if err == nil {
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return "must hold exactly one JSON object"
		}
		return ""
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON"
	case errors.As(err, &typ):
		if typ.Field == "" {
			return "must be a JSON object"
		}
		return typ.Field + ": wrong type"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		if strings.ContainsAny(name, "0123456789") {
			// Not echoed: a file keyed by number has a phone number here
			// (FuzzImportCallsNDJSON checks that no message repeats one).
			return "unknown field (its name holds digits, so it is not repeated here)"
		}
		return name + ": unknown field"
	case strings.Contains(err.Error(), "pai and identity"):
		return "signalling: pai and identity must be a string or an array of strings"
	}
	return "malformed JSON"
}
