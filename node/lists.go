package node

import (
	"context"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/store"
)

const maxReason = 256

// listNumber normalises a number for a list: it must have an E.164 form of a
// possible length (unassigned ranges are allowed: spoofers use them).
func (n *Node) listNumber(tenant, raw, region, field string) (call.Number, error) {
	var num call.Number
	if region == "" {
		num = n.engine.Number(tenant, raw)
	} else {
		num = n.engine.NumberIn(raw, region)
	}
	if !num.Present() || !num.Possible {
		return call.Number{}, call.Errorf(call.Invalid, "%s: not a telephone number of a possible length", field)
	}
	return num, nil
}

// AddListEntry puts one number on a list (replacing an entry for the same
// number) and applies it to the next call.
func (n *Node) AddListEntry(ctx context.Context, tenant string, list call.ListKind, raw, reason string, expires time.Time) (call.ListEntry, error) {
	num, err := n.listNumber(tenant, raw, "", "number")
	if err != nil {
		return call.ListEntry{}, err
	}
	if err := checkReason(reason, "reason"); err != nil {
		return call.ListEntry{}, err
	}
	now := n.now().UTC()
	if !expires.IsZero() && !expires.After(now) {
		return call.ListEntry{}, call.Errorf(call.Invalid, "expires_at: must be in the future")
	}
	e := call.ListEntry{List: list, Number: num, Reason: reason, ExpiresAt: expires.UTC(), CreatedAt: now}
	if err := n.putListEntries(ctx, tenant, []call.ListEntry{e}); err != nil {
		return call.ListEntry{}, err
	}
	k, err := n.tenantKeys(tenant)
	if err != nil {
		return call.ListEntry{}, err
	}
	return e, n.audit(ctx, tenant, "list.write", string(list)+"/"+hex.EncodeToString(pseudonym(k, num)), nil)
}

func checkReason(reason, field string) error {
	if len(reason) > maxReason {
		return call.Errorf(call.Invalid, "%s: at most %d characters", field, maxReason)
	}
	if !call.ValidText(reason) {
		return call.Errorf(call.Invalid, "%s: must be UTF-8 text without NUL", field)
	}
	return nil
}

// putListEntries stores entries, then applies them to the engine.
func (n *Node) putListEntries(ctx context.Context, tenant string, entries []call.ListEntry) error {
	k, err := n.tenantKeys(tenant)
	if err != nil {
		return err
	}
	rows := make([]store.ListEntry, len(entries))
	for i, e := range entries {
		p := pseudonym(k, e.Number)
		rows[i] = store.ListEntry{
			List: e.List, Pseudonym: p, Reason: e.Reason, ExpiresAt: e.ExpiresAt, CreatedAt: e.CreatedAt,
			Sealed: k.Seal([]byte(e.Number.E164), listAAD(tenant, e.List, p)),
		}
	}
	if err := n.store.PutListEntries(ctx, tenant, rows); err != nil {
		return err
	}
	return n.engine.PutListEntries(tenant, entries...)
}

func listAAD(tenant string, list call.ListKind, p []byte) []byte {
	return aad("lists", tenant, string(list)+"/"+hex.EncodeToString(p))
}

func (n *Node) openListEntry(tenant string, k *seal.TenantKeys, r store.ListEntry) (call.ListEntry, error) {
	b, err := k.Open(r.Sealed, listAAD(tenant, r.List, r.Pseudonym))
	if err != nil {
		return call.ListEntry{}, fmt.Errorf("open list entry: %w", err)
	}
	return call.ListEntry{
		List: r.List, Number: n.engine.Number(tenant, string(b)), Reason: r.Reason,
		ExpiresAt: r.ExpiresAt, CreatedAt: r.CreatedAt,
	}, nil
}

// DeleteListEntry takes a number off a list. NotFound if it is not on it.
func (n *Node) DeleteListEntry(ctx context.Context, tenant string, list call.ListKind, raw string) error {
	k, err := n.tenantKeys(tenant)
	if err != nil {
		return err
	}
	num, err := n.listNumber(tenant, raw, "", "number")
	if err != nil {
		return err
	}
	p := pseudonym(k, num)
	if err := n.store.DeleteListEntry(ctx, tenant, list, p); err != nil {
		return err
	}
	if err := n.audit(ctx, tenant, "list.delete", string(list)+"/"+hex.EncodeToString(p), nil); err != nil {
		return err
	}
	return n.engine.DeleteListEntry(tenant, list, num)
}

// ListEntries returns a page of a list (ordered by pseudonym, so not by
// number) and the cursor of the next page ("" at the end).
func (n *Node) ListEntries(ctx context.Context, tenant string, list call.ListKind, cursor string, limit int) ([]call.ListEntry, string, error) {
	k, err := n.tenantKeys(tenant)
	if err != nil {
		return nil, "", err
	}
	if limit == 0 {
		limit = 100
	}
	if limit < 0 || limit > 1000 {
		return nil, "", call.Errorf(call.Invalid, "limit: must be between 1 and 1000")
	}
	after, err := hex.DecodeString(cursor)
	if err != nil || (cursor != "" && len(after) != 32) {
		return nil, "", call.Errorf(call.Invalid, "after: not a cursor from a previous page")
	}
	rows, err := n.store.ListEntries(ctx, tenant, list, after, limit)
	if err != nil {
		return nil, "", err
	}
	out := make([]call.ListEntry, len(rows))
	for i, r := range rows {
		if out[i], err = n.openListEntry(tenant, k, r); err != nil {
			return nil, "", err
		}
	}
	if err := n.audit(ctx, tenant, "list.read", string(list), map[string]any{"entries": len(rows), "after": cursor}); err != nil {
		return nil, "", err
	}
	next := ""
	if len(rows) == limit {
		next = hex.EncodeToString(rows[len(rows)-1].Pseudonym)
	}
	return out, next, nil
}

// ImportResult reports a bulk list import.
type ImportResult struct {
	Added         int        `json:"added"`
	RejectedCount int        `json:"rejected_count"`
	Rejected      []RowError `json:"rejected"` // the first 1000

}

// RowError is one rejected CSV row.
type RowError struct {
	Line    int    `json:"line"`
	Message string `json:"message"`
}

// maxRejected bounds the rejected rows listed (RejectedCount is exact).
const (
	maxRejected  = 1000
	importBatch  = 5000
	maxImportRow = 1 << 22
)

// ImportList reads CSV rows `number[,reason[,expires_at]]` (a first row
// without digits is taken as a header), normalising national numbers in
// region (the tenant's home region when ""). Good rows are stored in batches
// and acknowledged only after commit; bad rows are reported by line and
// skipped. It stops with TooLarge after 4M rows.
func (n *Node) ImportList(ctx context.Context, tenant string, list call.ListKind, r io.Reader, region string) (ImportResult, error) {
	if region != "" && !call.ValidRegion(region) {
		return ImportResult{}, call.Errorf(call.Invalid, "region: must be an ISO 3166 alpha-2 code such as \"US\"")
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	res := ImportResult{Rejected: []RowError{}}
	reject := func(line int, msg string) {
		res.RejectedCount++
		if len(res.Rejected) < maxRejected {
			res.Rejected = append(res.Rejected, RowError{Line: line, Message: msg})
		}
	}
	now := n.now().UTC()
	batch := make([]call.ListEntry, 0, importBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := n.putListEntries(ctx, tenant, batch); err != nil {
			return err
		}
		res.Added += len(batch)
		batch = batch[:0]
		return nil
	}
	for row := 0; ; row++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var perr *csv.ParseError
		if errors.As(err, &perr) {
			reject(perr.Line, "malformed CSV: "+perr.Err.Error())
			continue
		}
		if err != nil {
			return res, fmt.Errorf("reading CSV: %w", err)
		}
		// Only now: a malformed row has no field positions, and
		// FieldPos panics (found by FuzzImportList).
		line, _ := cr.FieldPos(0)
		if row >= maxImportRow {
			return res, call.Errorf(call.TooLarge, "at most %d rows per import; split the file", maxImportRow)
		}
		raw := strings.TrimSpace(rec[0])
		if row == 0 && !strings.ContainsAny(raw, "0123456789") {
			continue // header
		}
		e := call.ListEntry{List: list, CreatedAt: now}
		num, err := n.listNumber(tenant, raw, region, "number")
		if err != nil {
			reject(line, call.ErrorMessage(err))
			continue
		}
		e.Number = num
		if len(rec) > 1 {
			e.Reason = strings.TrimSpace(rec[1])
			if err := checkReason(e.Reason, "reason"); err != nil {
				reject(line, call.ErrorMessage(err))
				continue
			}
		}
		if len(rec) > 2 && strings.TrimSpace(rec[2]) != "" {
			t, err := parseTime(strings.TrimSpace(rec[2]))
			if err != nil {
				reject(line, "expires_at: must be RFC 3339 or YYYY-MM-DD")
				continue
			}
			e.ExpiresAt = t
		}
		batch = append(batch, e)
		if len(batch) == importBatch {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	if err := flush(); err != nil {
		return res, err
	}
	return res, n.audit(ctx, tenant, "list.import", string(list), map[string]int{"added": res.Added, "rejected": res.RejectedCount})
}

func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	return time.Parse("2006-01-02", s)
}
