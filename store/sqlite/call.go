package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

const callColumns = `id, tenant, ref, started_at, ingress, appliance,
	caller_pseudonym, dialled_pseudonym, user_pseudonym,
	score, action, markers, verdict, sealed,
	end_duration, end_result, end_egress, review, fraud_type`

// InsertCalls stores new call records in one transaction, skipping any whose
// id exists; NotFound if a record's tenant does not.
func (db *DB) InsertCalls(ctx context.Context, calls []store.Call) error {
	if len(calls) == 0 {
		return nil
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO calls (`+callColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (tenant, id) DO NOTHING`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, c := range calls {
			var dur, result, egress any
			if c.End != nil {
				dur, result, egress = int64(c.End.Duration), c.End.Result, c.End.Egress
			}
			_, err := stmt.ExecContext(ctx, c.ID, c.Tenant, c.Ref, nanos(c.StartedAt), c.Ingress, c.Appliance,
				c.CallerPseudonym, c.DialledPseudonym, c.UserPseudonym,
				c.Score, c.Action, strings.Join(c.Markers, ","), c.Verdict, c.Sealed,
				dur, result, egress, cmp.Or(c.Review, call.Unreviewed), c.FraudType)
			if err != nil {
				return err
			}
		}
		return nil
	})
	return fail("insert calls", "call record", err)
}

// UpdateCallEnd sets the call-end data of a record; NotFound if absent.
func (db *DB) UpdateCallEnd(ctx context.Context, tenant, id string, end store.End) error {
	res, err := db.write.ExecContext(ctx,
		`UPDATE calls SET end_duration = ?, end_result = ?, end_egress = ? WHERE tenant = ? AND id = ?`,
		int64(end.Duration), end.Result, end.Egress, tenant, id)
	return fail("update call end", "call record", mustAffect(res, err, "call record"))
}

// UpdateCallEnds applies call-end updates in one transaction, in order; an
// update naming no record of its tenant is skipped.
func (db *DB) UpdateCallEnds(ctx context.Context, ends []store.CallEnd) error {
	if len(ends) == 0 {
		return nil
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `UPDATE calls SET end_duration = ?, end_result = ?, end_egress = ? WHERE tenant = ? AND id = ?`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, e := range ends {
			if _, err := stmt.ExecContext(ctx, int64(e.End.Duration), e.End.Result, e.End.Egress, e.Tenant, e.ID); err != nil {
				return err
			}
		}
		return nil
	})
	return fail("update call ends", "call record", err)
}

// AddLabel appends an analyst label and sets the record's review status from
// it, in one transaction; NotFound if the record is absent.
func (db *DB) AddLabel(ctx context.Context, l store.Label) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE calls SET review = ?, fraud_type = ? WHERE tenant = ? AND id = ?`,
			l.Label, l.FraudType, l.Tenant, l.RecordID)
		if err := mustAffect(res, err, "call record"); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `
			INSERT INTO labels (tenant, record_id, label, fraud_type, sealed, analyst, at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`,
			l.Tenant, l.RecordID, l.Label, l.FraudType, l.Sealed, l.By, nanos(l.At))
		return err
	})
	return fail("add label", "label", err)
}

// Call returns one record; NotFound if absent.
func (db *DB) Call(ctx context.Context, tenant, id string) (store.Call, error) {
	row := db.read.QueryRowContext(ctx, `SELECT `+callColumns+` FROM calls WHERE tenant = ? AND id = ?`, tenant, id)
	c, err := scanCall(row)
	return c, fail("call", "call record", notFound(err, "call record"))
}

// Calls returns records matching f, newest id first.
func (db *DB) Calls(ctx context.Context, tenant string, f store.CallFilter) ([]store.Call, error) {
	q := `SELECT ` + callColumns + ` FROM calls WHERE tenant = ?`
	args := []any{tenant}
	add := func(cond string, arg any) {
		q += " AND " + cond
		args = append(args, arg)
	}
	if !f.From.IsZero() {
		add("started_at >= ?", f.From.UnixNano())
	}
	if !f.To.IsZero() {
		add("started_at < ?", f.To.UnixNano())
	}
	if f.Action != "" {
		add("action = ?", f.Action)
	}
	if f.Review != "" {
		add("review = ?", f.Review)
	}
	if f.Before != "" {
		add("id < ?", f.Before)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit(f.Limit))

	rows, err := db.read.QueryContext(ctx, q, args...)
	cs, err := collect(rows, err, scanCall)
	return cs, fail("calls", "call record", err)
}

// Labels returns the labels of a record, oldest first; none if the record
// is absent.
func (db *DB) Labels(ctx context.Context, tenant, id string) ([]store.Label, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT tenant, record_id, label, fraud_type, sealed, analyst, at FROM labels
		WHERE record_id = ? AND tenant = ? ORDER BY at, id`, id, tenant)
	ls, err := collect(rows, err, func(s scanner) (store.Label, error) {
		var l store.Label
		var at sql.NullInt64
		err := s.Scan(&l.Tenant, &l.RecordID, &l.Label, &l.FraudType, &l.Sealed, &l.By, &at)
		l.At = timeOf(at)
		return l, err
	})
	return ls, fail("labels", "label", err)
}

func scanCall(s scanner) (store.Call, error) {
	var (
		c                 store.Call
		started, duration sql.NullInt64
		result, egress    sql.NullString
		markers           string
	)
	err := s.Scan(&c.ID, &c.Tenant, &c.Ref, &started, &c.Ingress, &c.Appliance,
		&c.CallerPseudonym, &c.DialledPseudonym, &c.UserPseudonym,
		&c.Score, &c.Action, &markers, &c.Verdict, &c.Sealed,
		&duration, &result, &egress, &c.Review, &c.FraudType)
	c.StartedAt = timeOf(started)
	if markers != "" {
		c.Markers = strings.Split(markers, ",")
	}
	if duration.Valid {
		c.End = &store.End{Duration: time.Duration(duration.Int64), Result: call.Result(result.String), Egress: egress.String}
	}
	return c, err
}
