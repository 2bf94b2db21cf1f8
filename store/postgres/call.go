package postgres

import (
	"cmp"
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

var callColumns = []string{"id", "tenant", "ref", "started_at", "ingress", "appliance",
	"caller_pseudonym", "dialled_pseudonym", "user_pseudonym",
	"score", "action", "markers", "verdict", "sealed",
	"end_duration", "end_result", "end_egress", "review", "fraud_type"}

var callColumnList = strings.Join(callColumns, ", ")

// staging is the session's temporary table that InsertCalls copies a batch
// into. It is made once per connection (see stage) and emptied at every
// commit.
var staging = pgx.Identifier{"pg_temp", "calls_in"}

// stagingReady marks, in a connection's custom data, that it has staging.
const stagingReady = "ringfence.staging"

// InsertCalls stores new call records in one transaction, skipping any whose
// id exists; NotFound if a record's tenant does not.
//
// Duplicates within the batch are dropped here first, keeping the first.
// The batch is then copied (COPY, binary) straight into calls in one
// transaction. If a row is stored already (a retried batch), that COPY fails
// on the key and rolls back whole, and the batch goes the slow way, in
// another single transaction: COPY into a temporary staging table, then
// INSERT ... SELECT ... ON CONFLICT DO NOTHING into calls, which skips the
// stored rows. (COPY cannot skip a row; going straight to calls saves
// writing every row twice in the common case.)
//
// A row duplicates a stored one when both have the same (tenant, id,
// started_at), the key of calls; since ids are unique and a retry resends
// the same rows, that is the same as the same id (see the migration).
// Partitions for the months of the batch are made first if near enough to
// now (see EnsurePartitions); others go to the default partition.
func (db *DB) InsertCalls(ctx context.Context, calls []store.Call) error {
	if len(calls) == 0 {
		return nil
	}
	type key struct{ tenant, id string }
	seen := make(map[key]bool, len(calls))
	rows := make([][]any, 0, len(calls))
	for _, c := range calls {
		k := key{c.Tenant, c.ID}
		if seen[k] {
			continue
		}
		seen[k] = true
		rows = append(rows, callRow(c))
	}
	if err := db.ensureFor(ctx, calls); err != nil {
		return err
	}

	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return fail("insert calls", "call record", err)
	}
	defer conn.Release()
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"calls"}, callColumns, pgx.CopyFromRows(rows))
		return err
	})
	if hasCode(err, uniqueViolation) {
		err = insertStaged(ctx, conn.Conn(), rows)
	}
	return fail("insert calls", "call record", err)
}

// insertStaged inserts rows into calls through staging, skipping rows
// stored already, in one transaction.
func insertStaged(ctx context.Context, conn *pgx.Conn, rows [][]any) error {
	if err := stage(ctx, conn); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.CopyFrom(ctx, staging, callColumns, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO calls (`+callColumnList+`)
			SELECT `+callColumnList+` FROM `+staging.Sanitize()+` ON CONFLICT DO NOTHING`)
		return err
	})
}

// stage makes the connection's staging table unless it has it.
func stage(ctx context.Context, conn *pgx.Conn) error {
	data := conn.PgConn().CustomData()
	if data[stagingReady] == true {
		return nil
	}
	_, err := conn.Exec(ctx, `CREATE TEMPORARY TABLE IF NOT EXISTS `+staging[1]+` (LIKE calls) ON COMMIT DELETE ROWS`)
	if err == nil {
		data[stagingReady] = true
	}
	return err
}

// callRow returns the column values of c in callColumns order.
func callRow(c store.Call) []any {
	var duration, result, egress any // NULL until the call ends
	if c.End != nil {
		duration, result, egress = int64(c.End.Duration), string(c.End.Result), c.End.Egress
	}
	markers := c.Markers
	if markers == nil {
		markers = []string{}
	}
	return []any{c.ID, c.Tenant, c.Ref, c.StartedAt, c.Ingress, c.Appliance,
		c.CallerPseudonym, c.DialledPseudonym, c.UserPseudonym,
		c.Score, string(c.Action), markers, c.Verdict, c.Sealed,
		duration, result, egress, string(cmp.Or(c.Review, call.Unreviewed)), c.FraudType}
}

const updateEnd = `UPDATE calls SET end_duration = $1, end_result = $2, end_egress = $3 WHERE tenant = $4 AND id = $5`

// UpdateCallEnd sets the call-end data of a record; NotFound if absent.
func (db *DB) UpdateCallEnd(ctx context.Context, tenant, id string, end store.End) error {
	tag, err := db.pool.Exec(ctx, updateEnd, int64(end.Duration), string(end.Result), end.Egress, tenant, id)
	return fail("update call end", "call record", mustAffect(tag, err, "call record"))
}

// UpdateCallEnds applies call-end updates in one transaction, in order (one
// pipelined batch); an update naming no record of its tenant is skipped.
func (db *DB) UpdateCallEnds(ctx context.Context, ends []store.CallEnd) error {
	if len(ends) == 0 {
		return nil
	}
	var b pgx.Batch
	for _, e := range ends {
		b.Queue(updateEnd, int64(e.End.Duration), string(e.End.Result), e.End.Egress, e.Tenant, e.ID)
	}
	err := db.inTx(ctx, func(tx pgx.Tx) error { return tx.SendBatch(ctx, &b).Close() })
	return fail("update call ends", "call record", err)
}

// AddLabel appends an analyst label and sets the record's review status from
// it, in one transaction; NotFound if the record is absent.
func (db *DB) AddLabel(ctx context.Context, l store.Label) error {
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var started time.Time
		err := tx.QueryRow(ctx, `UPDATE calls SET review = $1, fraud_type = $2 WHERE tenant = $3 AND id = $4
			RETURNING started_at`, string(l.Label), l.FraudType, l.Tenant, l.RecordID).Scan(&started)
		if errors.Is(err, pgx.ErrNoRows) {
			return call.Errorf(call.NotFound, "call record not found")
		} else if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO labels (tenant, record_id, record_started_at, label, fraud_type, sealed, analyst, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			l.Tenant, l.RecordID, started, string(l.Label), l.FraudType, l.Sealed, l.By, ts(l.At))
		return err
	})
	return fail("add label", "label", err)
}

// Call returns one record; NotFound if absent.
func (db *DB) Call(ctx context.Context, tenant, id string) (store.Call, error) {
	row := db.pool.QueryRow(ctx, `SELECT `+callColumnList+` FROM calls WHERE tenant = $1 AND id = $2`, tenant, id)
	c, err := scanCall(row)
	return c, fail("call", "call record", err)
}

// Calls returns records matching f, newest id first.
//
// A filter on an action other than allow, or on a review status other than
// unreviewed, also states that in a literal, so the planner can use the
// partial index for it whatever the parameter's value.
func (db *DB) Calls(ctx context.Context, tenant string, f store.CallFilter) ([]store.Call, error) {
	var q strings.Builder
	q.WriteString(`SELECT ` + callColumnList + ` FROM calls WHERE tenant = $1`)
	args := []any{tenant}
	add := func(cond string, arg any) {
		args = append(args, arg)
		q.WriteString(" AND " + strings.Replace(cond, "?", "$"+strconv.Itoa(len(args)), 1))
	}
	if !f.From.IsZero() {
		add("started_at >= ?", f.From)
	}
	if !f.To.IsZero() {
		add("started_at < ?", f.To)
	}
	if f.Action != "" {
		add("action = ?", string(f.Action))
		if f.Action != call.Allow {
			q.WriteString(" AND action <> 'allow'")
		}
	}
	if f.Review != "" {
		add("review = ?", string(f.Review))
		if f.Review != call.Unreviewed {
			q.WriteString(" AND review <> 'unreviewed'")
		}
	}
	if f.Before != "" {
		add("id < ?", f.Before)
	}
	args = append(args, limit(f.Limit))
	q.WriteString(" ORDER BY id DESC LIMIT $" + strconv.Itoa(len(args)))

	rows, err := db.pool.Query(ctx, q.String(), args...)
	if err != nil {
		return nil, fail("calls", "call record", err)
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Call, error) { return scanCall(r) })
	return cs, fail("calls", "call record", err)
}

// Labels returns the labels of a record, oldest first; none if the record
// is absent.
func (db *DB) Labels(ctx context.Context, tenant, id string) ([]store.Label, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT tenant, record_id, label, fraud_type, sealed, analyst, at FROM labels
		WHERE tenant = $1 AND record_id = $2 ORDER BY at NULLS FIRST, id`, tenant, id)
	if err != nil {
		return nil, fail("labels", "label", err)
	}
	ls, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Label, error) {
		var l store.Label
		var at *time.Time
		err := r.Scan(&l.Tenant, &l.RecordID, &l.Label, &l.FraudType, &l.Sealed, &l.By, &at)
		l.At = timeOf(at)
		return l, err
	})
	return ls, fail("labels", "label", err)
}

// scanner is a pgx.Row or pgx.CollectableRow.
type scanner interface{ Scan(dest ...any) error }

func scanCall(s scanner) (store.Call, error) {
	var (
		c              store.Call
		markers        []string
		duration       *int64
		result, egress *string
	)
	err := s.Scan(&c.ID, &c.Tenant, &c.Ref, &c.StartedAt, &c.Ingress, &c.Appliance,
		&c.CallerPseudonym, &c.DialledPseudonym, &c.UserPseudonym,
		&c.Score, &c.Action, &markers, &c.Verdict, &c.Sealed,
		&duration, &result, &egress, &c.Review, &c.FraudType)
	if err != nil {
		return store.Call{}, err
	}
	c.StartedAt = c.StartedAt.UTC()
	if len(markers) > 0 {
		c.Markers = markers
	}
	if duration != nil {
		c.End = &store.End{Duration: time.Duration(*duration), Result: call.Result(deref(result)), Egress: deref(egress)}
	}
	return c, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
