package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

var _ store.Archive = (*DB)(nil)

// archiveQuerier is a *sql.Tx or one of the *sql.DB pools.
type archiveQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// liveTenant returns NotFound unless the tenant exists and is not
// offboarded.
func liveTenant(ctx context.Context, tx *sql.Tx, tenant string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM tenants WHERE id = ? AND deleted_at IS NULL`, tenant).Scan(&one)
	return notFound(err, "tenant")
}

// jsonIDs is ids as a JSON array, for `IN (SELECT value FROM json_each(?))`.
func jsonIDs(ids []string) string {
	if ids == nil {
		ids = []string{}
	}
	b, _ := json.Marshal(ids) // strings always marshal
	return string(b)
}

// PutArchiveUser inserts a user or replaces a stored one's sealed value and
// numbers (see store.Archive).
func (db *DB) PutArchiveUser(ctx context.Context, u store.ArchiveUser) error {
	if u.ID == "" {
		return call.Errorf(call.Invalid, "archive user: id required")
	}
	if err := store.CheckArchiveNumbers("archive user", u.Numbers); err != nil {
		return err
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := liveTenant(ctx, tx, u.Tenant); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO archive_users (tenant, id, sealed, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (tenant, id) DO UPDATE SET sealed = excluded.sealed`,
			u.Tenant, u.ID, u.Sealed, nanos(u.CreatedAt))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM archive_user_numbers WHERE tenant = ? AND user_id = ?`, u.Tenant, u.ID)
		if err != nil {
			return err
		}
		for _, p := range u.Numbers {
			_, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO archive_user_numbers (tenant, user_id, pseudonym)
				VALUES (?, ?, ?)`, u.Tenant, u.ID, p)
			if err != nil {
				return err
			}
		}
		return nil
	})
	return fail("put archive user", "archive user", err)
}

const archiveUserColumns = `tenant, id, sealed, offboarded_at, created_at`

func scanArchiveUser(s scanner) (store.ArchiveUser, error) {
	var u store.ArchiveUser
	var off, created sql.NullInt64
	err := s.Scan(&u.Tenant, &u.ID, &u.Sealed, &off, &created)
	u.OffboardedAt, u.CreatedAt = timeOf(off), timeOf(created)
	return u, err
}

// archiveUsers runs a query of archiveUserColumns and fills the users'
// numbers.
func (db *DB) archiveUsers(ctx context.Context, tenant, q string, args ...any) ([]store.ArchiveUser, error) {
	rows, err := db.read.QueryContext(ctx, q, args...)
	us, err := collect(rows, err, scanArchiveUser)
	if err != nil || len(us) == 0 {
		return us, err
	}
	ids := make([]string, len(us))
	at := make(map[string]int, len(us))
	for i, u := range us {
		ids[i], at[u.ID] = u.ID, i
	}
	rows, err = db.read.QueryContext(ctx, `SELECT user_id, pseudonym FROM archive_user_numbers
		WHERE tenant = ? AND user_id IN (SELECT value FROM json_each(?)) ORDER BY user_id, pseudonym`, tenant, jsonIDs(ids))
	_, err = collect(rows, err, func(s scanner) (struct{}, error) {
		var id string
		var p []byte
		if err := s.Scan(&id, &p); err != nil {
			return struct{}{}, err
		}
		us[at[id]].Numbers = append(us[at[id]].Numbers, p)
		return struct{}{}, nil
	})
	return us, err
}

// ArchiveUser returns one user with its numbers.
func (db *DB) ArchiveUser(ctx context.Context, tenant, id string) (store.ArchiveUser, error) {
	us, err := db.archiveUsers(ctx, tenant, `SELECT `+archiveUserColumns+` FROM archive_users WHERE tenant = ? AND id = ?`, tenant, id)
	if err == nil && len(us) == 0 {
		err = call.Errorf(call.NotFound, "archive user not found")
	}
	if err != nil {
		return store.ArchiveUser{}, fail("archive user", "archive user", err)
	}
	return us[0], nil
}

// ArchiveUsers returns a page of users by id.
func (db *DB) ArchiveUsers(ctx context.Context, tenant, after string, n int) ([]store.ArchiveUser, error) {
	us, err := db.archiveUsers(ctx, tenant, `SELECT `+archiveUserColumns+` FROM archive_users
		WHERE tenant = ? AND id > ? ORDER BY id LIMIT ?`, tenant, after, limit(n))
	return us, fail("archive users", "archive user", err)
}

// ArchiveUsersByNumber returns the users with a number of the pseudonym.
func (db *DB) ArchiveUsersByNumber(ctx context.Context, tenant string, pseudonym []byte) ([]store.ArchiveUser, error) {
	us, err := db.archiveUsers(ctx, tenant, `SELECT `+archiveUserColumns+` FROM archive_users WHERE tenant = ?1 AND id IN
		(SELECT user_id FROM archive_user_numbers WHERE tenant = ?1 AND pseudonym = ?2) ORDER BY id`, tenant, pseudonym)
	return us, fail("archive users by number", "archive user", err)
}

// OffboardArchiveUser marks a user offboarded; NotFound if absent, Conflict
// if offboarded already.
func (db *DB) OffboardArchiveUser(ctx context.Context, tenant, id string, at time.Time) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var off sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT offboarded_at FROM archive_users WHERE tenant = ? AND id = ?`, tenant, id).Scan(&off)
		if err != nil {
			return notFound(err, "archive user")
		}
		if off.Valid {
			return call.Errorf(call.Conflict, "archive user offboarded already")
		}
		if at.IsZero() {
			at = db.now()
		}
		_, err = tx.ExecContext(ctx, `UPDATE archive_users SET offboarded_at = ? WHERE tenant = ? AND id = ?`, at.UnixNano(), tenant, id)
		return err
	})
	return fail("offboard archive user", "archive user", err)
}

// checkArchiveContacts returns Invalid for a contact list PutArchiveContacts
// refuses.
func checkArchiveContacts(cs []store.ArchiveContact) error {
	if len(cs) > store.MaxArchiveContacts {
		return call.Errorf(call.Invalid, "archive contacts: at most %d contacts", store.MaxArchiveContacts)
	}
	seen := make(map[string]bool, len(cs))
	for _, c := range cs {
		if c.ID == "" {
			return call.Errorf(call.Invalid, "archive contacts: id required")
		}
		if seen[c.ID] {
			return call.Errorf(call.Invalid, "archive contacts: repeated id")
		}
		seen[c.ID] = true
		if err := store.CheckArchiveNumbers("archive contact", c.Numbers); err != nil {
			return err
		}
	}
	return nil
}

// PutArchiveContacts replaces a user's contact list in one transaction.
func (db *DB) PutArchiveContacts(ctx context.Context, tenant, userID string, cs []store.ArchiveContact) error {
	if err := checkArchiveContacts(cs); err != nil {
		return err
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM archive_users WHERE tenant = ? AND id = ?`, tenant, userID).Scan(&one)
		if err != nil {
			return notFound(err, "archive user")
		}
		for _, table := range []string{"archive_contact_numbers", "archive_contacts"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE tenant = ? AND user_id = ?`, tenant, userID); err != nil {
				return err
			}
		}
		for _, c := range cs {
			_, err := tx.ExecContext(ctx, `INSERT INTO archive_contacts (tenant, user_id, id, sealed, created_at)
				VALUES (?, ?, ?, ?, ?)`, tenant, userID, c.ID, c.Sealed, nanos(c.CreatedAt))
			if err != nil {
				return err
			}
			for _, p := range c.Numbers {
				_, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO archive_contact_numbers
					(tenant, user_id, contact_id, pseudonym) VALUES (?, ?, ?, ?)`, tenant, userID, c.ID, p)
				if err != nil {
					return err
				}
			}
		}
		return nil
	})
	return fail("put archive contacts", "archive contact", err)
}

// ArchiveContacts returns a user's contacts by id.
func (db *DB) ArchiveContacts(ctx context.Context, tenant, userID string) ([]store.ArchiveContact, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT tenant, user_id, id, sealed, created_at FROM archive_contacts
		WHERE tenant = ? AND user_id = ? ORDER BY id`, tenant, userID)
	cs, err := collect(rows, err, func(s scanner) (store.ArchiveContact, error) {
		var c store.ArchiveContact
		var created sql.NullInt64
		err := s.Scan(&c.Tenant, &c.UserID, &c.ID, &c.Sealed, &created)
		c.CreatedAt = timeOf(created)
		return c, err
	})
	if err != nil || len(cs) == 0 {
		return cs, fail("archive contacts", "archive contact", err)
	}
	at := make(map[string]int, len(cs))
	for i, c := range cs {
		at[c.ID] = i
	}
	rows, err = db.read.QueryContext(ctx, `SELECT contact_id, pseudonym FROM archive_contact_numbers
		WHERE tenant = ? AND user_id = ? ORDER BY contact_id, pseudonym`, tenant, userID)
	_, err = collect(rows, err, func(s scanner) (struct{}, error) {
		var id string
		var p []byte
		if err := s.Scan(&id, &p); err != nil {
			return struct{}{}, err
		}
		if i, ok := at[id]; ok {
			cs[i].Numbers = append(cs[i].Numbers, p)
		}
		return struct{}{}, nil
	})
	return cs, fail("archive contacts", "archive contact", err)
}

const archiveItemColumns = `tenant, id, client_id, kind, user_id, direction, started_at, duration_ns, result,
	sealed, blob_id, call_id, size, sha256, chain_day, created_at`

func scanArchiveItem(s scanner) (store.ArchiveItem, error) {
	var it store.ArchiveItem
	var started, created sql.NullInt64
	var dur int64
	err := s.Scan(&it.Tenant, &it.ID, &it.ClientID, &it.Kind, &it.UserID, &it.Direction, &started, &dur, &it.Result,
		&it.Sealed, &it.BlobID, &it.CallID, &it.Size, &it.SHA256, &it.ChainDay, &created)
	it.StartedAt, it.CreatedAt, it.Duration = timeOf(started), timeOf(created), time.Duration(dur)
	return it, err
}

// archiveItems runs a query of archiveItemColumns on q and fills the
// items' parties and tokens.
func archiveItems(ctx context.Context, q archiveQuerier, tenant, query string, args ...any) ([]store.ArchiveItem, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	its, err := collect(rows, err, scanArchiveItem)
	if err != nil || len(its) == 0 {
		return its, err
	}
	ids := make([]string, len(its))
	at := make(map[string]int, len(its))
	for i, it := range its {
		ids[i], at[it.ID] = it.ID, i
	}
	for _, set := range []struct {
		query string
		field func(*store.ArchiveItem) *[][]byte
	}{
		{`SELECT item_id, pseudonym FROM archive_item_parties WHERE tenant = ? AND item_id IN
			(SELECT value FROM json_each(?)) ORDER BY item_id, pseudonym`,
			func(it *store.ArchiveItem) *[][]byte { return &it.Parties }},
		{`SELECT item_id, token FROM archive_item_tokens WHERE tenant = ? AND item_id IN
			(SELECT value FROM json_each(?)) ORDER BY item_id, token`,
			func(it *store.ArchiveItem) *[][]byte { return &it.Tokens }},
	} {
		rows, err := q.QueryContext(ctx, set.query, tenant, jsonIDs(ids))
		_, err = collect(rows, err, func(s scanner) (struct{}, error) {
			var id string
			var b []byte
			if err := s.Scan(&id, &b); err != nil {
				return struct{}{}, err
			}
			f := set.field(&its[at[id]])
			*f = append(*f, b)
			return struct{}{}, nil
		})
		if err != nil {
			return nil, err
		}
	}
	return its, nil
}

// PutArchiveItem stores an item unless the tenant has one with its client
// id, which it returns instead (see store.Archive).
func (db *DB) PutArchiveItem(ctx context.Context, it store.ArchiveItem) (store.ArchiveItem, bool, error) {
	if err := store.CheckArchiveItem(it); err != nil {
		return store.ArchiveItem{}, false, err
	}
	var stored store.ArchiveItem
	var created bool
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := liveTenant(ctx, tx, it.Tenant); err != nil {
			return err
		}
		its, err := archiveItems(ctx, tx, it.Tenant, `SELECT `+archiveItemColumns+` FROM archive_items
			WHERE tenant = ? AND client_id = ?`, it.Tenant, it.ClientID)
		if err != nil {
			return err
		}
		if len(its) == 1 {
			stored, created = its[0], false
			return nil
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO archive_items (`+archiveItemColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			it.Tenant, it.ID, it.ClientID, it.Kind, it.UserID, it.Direction, it.StartedAt.UnixNano(), int64(it.Duration),
			it.Result, it.Sealed, it.BlobID, it.CallID, it.Size, it.SHA256, it.ChainDay, nanos(it.CreatedAt))
		if err != nil {
			return err
		}
		for _, p := range it.Parties {
			_, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO archive_item_parties (tenant, item_id, pseudonym)
				VALUES (?, ?, ?)`, it.Tenant, it.ID, p)
			if err != nil {
				return err
			}
		}
		for _, k := range it.Tokens {
			_, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO archive_item_tokens (tenant, item_id, token)
				VALUES (?, ?, ?)`, it.Tenant, it.ID, k)
			if err != nil {
				return err
			}
		}
		its, err = archiveItems(ctx, tx, it.Tenant, `SELECT `+archiveItemColumns+` FROM archive_items
			WHERE tenant = ? AND id = ?`, it.Tenant, it.ID)
		if err != nil {
			return err
		}
		stored, created = its[0], true
		return nil
	})
	if err != nil {
		return store.ArchiveItem{}, false, fail("put archive item", "archive item", err)
	}
	return stored, created, nil
}

// ArchiveItem returns one item with its parties and tokens.
func (db *DB) ArchiveItem(ctx context.Context, tenant, id string) (store.ArchiveItem, error) {
	its, err := archiveItems(ctx, db.read, tenant, `SELECT `+archiveItemColumns+` FROM archive_items
		WHERE tenant = ? AND id = ?`, tenant, id)
	if err == nil && len(its) == 0 {
		err = call.Errorf(call.NotFound, "archive item not found")
	}
	if err != nil {
		return store.ArchiveItem{}, fail("archive item", "archive item", err)
	}
	return its[0], nil
}

// SearchArchive returns the items matching q, newest first.
func (db *DB) SearchArchive(ctx context.Context, tenant string, q store.ArchiveQuery) ([]store.ArchiveItem, error) {
	if err := store.CheckArchiveQuery(q); err != nil {
		return nil, err
	}
	query := `SELECT ` + archiveItemColumns + ` FROM archive_items WHERE tenant = ?1`
	args := []any{tenant}
	add := func(cond string, arg any) {
		args = append(args, arg)
		query += ` AND ` + cond + ` ?` + strconv.Itoa(len(args))
	}
	if q.UserID != "" {
		add(`user_id =`, q.UserID)
	}
	if q.Direction != "" {
		add(`direction =`, q.Direction)
	}
	if q.Kind != "" {
		add(`kind =`, q.Kind)
	}
	if !q.From.IsZero() {
		add(`started_at >=`, q.From.UnixNano())
	}
	if !q.To.IsZero() {
		add(`started_at <`, q.To.UnixNano())
	}
	if len(q.Party) > 0 {
		add(`id IN (SELECT item_id FROM archive_item_parties WHERE tenant = ?1 AND pseudonym =`, q.Party)
		query += `)`
	}
	for _, k := range q.Tokens {
		add(`id IN (SELECT item_id FROM archive_item_tokens WHERE tenant = ?1 AND token =`, k)
		query += `)`
	}
	if q.BeforeID != "" {
		args = append(args, q.BeforeStartedAt.UnixNano(), q.BeforeID)
		query += ` AND (started_at, id) < (?` + strconv.Itoa(len(args)-1) + `, ?` + strconv.Itoa(len(args)) + `)`
	}
	args = append(args, limit(q.Limit))
	query += ` ORDER BY started_at DESC, id DESC LIMIT ?` + strconv.Itoa(len(args))
	its, err := archiveItems(ctx, db.read, tenant, query, args...)
	return its, fail("search archive", "archive item", err)
}

// ArchiveDayItems returns a page of one chain day's items by id.
func (db *DB) ArchiveDayItems(ctx context.Context, tenant, day, after string, n int) ([]store.ArchiveItem, error) {
	if err := store.CheckArchiveDay(day); err != nil {
		return nil, err
	}
	its, err := archiveItems(ctx, db.read, tenant, `SELECT `+archiveItemColumns+` FROM archive_items
		WHERE tenant = ? AND chain_day = ? AND id > ? ORDER BY id LIMIT ?`, tenant, day, after, limit(n))
	return its, fail("archive day items", "archive item", err)
}

// PutArchiveHold places a legal hold; Conflict if its id is stored.
func (db *DB) PutArchiveHold(ctx context.Context, h store.ArchiveHold) error {
	if err := store.CheckArchiveHold(h); err != nil {
		return err
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := liveTenant(ctx, tx, h.Tenant); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO archive_holds
			(tenant, id, scope, user_id, case_id, from_at, to_at, reason, placed_by, placed_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			h.Tenant, h.ID, h.Scope, h.UserID, h.CaseID, nanos(h.From), nanos(h.To), h.Reason, h.PlacedBy, nanos(h.PlacedAt))
		return err
	})
	return fail("put archive hold", "archive hold", err)
}

// LiftArchiveHold lifts a hold; NotFound if absent, Conflict if lifted
// already.
func (db *DB) LiftArchiveHold(ctx context.Context, tenant, id, by string, at time.Time) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var lifted sql.NullInt64
		var liftedBy string
		err := tx.QueryRowContext(ctx, `SELECT lifted_by, lifted_at FROM archive_holds WHERE tenant = ? AND id = ?`,
			tenant, id).Scan(&liftedBy, &lifted)
		if err != nil {
			return notFound(err, "archive hold")
		}
		if lifted.Valid || liftedBy != "" {
			return call.Errorf(call.Conflict, "archive hold lifted already")
		}
		if at.IsZero() {
			at = db.now()
		}
		_, err = tx.ExecContext(ctx, `UPDATE archive_holds SET lifted_by = ?, lifted_at = ? WHERE tenant = ? AND id = ?`,
			by, at.UnixNano(), tenant, id)
		return err
	})
	return fail("lift archive hold", "archive hold", err)
}

// ArchiveHolds returns the tenant's holds by id, only active ones if
// activeOnly.
func (db *DB) ArchiveHolds(ctx context.Context, tenant string, activeOnly bool) ([]store.ArchiveHold, error) {
	q := `SELECT tenant, id, scope, user_id, case_id, from_at, to_at, reason, placed_by, placed_at, lifted_by, lifted_at
		FROM archive_holds WHERE tenant = ?`
	if activeOnly {
		q += ` AND lifted_at IS NULL AND lifted_by = ''`
	}
	rows, err := db.read.QueryContext(ctx, q+` ORDER BY id`, tenant)
	hs, err := collect(rows, err, func(s scanner) (store.ArchiveHold, error) {
		var h store.ArchiveHold
		var from, to, placed, lifted sql.NullInt64
		err := s.Scan(&h.Tenant, &h.ID, &h.Scope, &h.UserID, &h.CaseID, &from, &to, &h.Reason, &h.PlacedBy, &placed,
			&h.LiftedBy, &lifted)
		h.From, h.To, h.PlacedAt, h.LiftedAt = timeOf(from), timeOf(to), timeOf(placed), timeOf(lifted)
		return h, err
	})
	return hs, fail("archive holds", "archive hold", err)
}

// PutArchiveRetention stores the tenant's archive retention settings.
func (db *DB) PutArchiveRetention(ctx context.Context, tenant string, settings []byte) error {
	if settings == nil {
		settings = []byte{}
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := liveTenant(ctx, tx, tenant); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO archive_retention (tenant, settings) VALUES (?, ?)
			ON CONFLICT (tenant) DO UPDATE SET settings = excluded.settings`, tenant, settings)
		return err
	})
	return fail("put archive retention", "archive retention settings", err)
}

// ArchiveRetention returns the stored settings, nil if none.
func (db *DB) ArchiveRetention(ctx context.Context, tenant string) ([]byte, error) {
	var settings []byte
	err := db.read.QueryRowContext(ctx, `SELECT settings FROM archive_retention WHERE tenant = ?`, tenant).Scan(&settings)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return settings, fail("archive retention", "archive retention settings", err)
}

// archiveHeld is the condition that an active hold of the tenant covers
// the archive_items row i (see store.ArchiveHold.Covers).
const archiveHeld = `EXISTS (SELECT 1 FROM archive_holds h WHERE h.tenant = i.tenant
	AND h.lifted_at IS NULL AND h.lifted_by = ''
	AND (h.user_id = '' OR h.user_id = i.user_id)
	AND (h.from_at IS NULL OR i.started_at >= h.from_at)
	AND (h.to_at IS NULL OR i.started_at < h.to_at))`

// PurgeArchive deletes up to p.Limit unheld items of a kind started before
// p.Before, oldest first, with their parties and tokens (see
// store.Archive).
func (db *DB) PurgeArchive(ctx context.Context, tenant string, p store.ArchivePurge) (store.ArchivePurged, error) {
	if err := store.CheckArchivePurge(p); err != nil {
		return store.ArchivePurged{}, err
	}
	var out store.ArchivePurged
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		out = store.ArchivePurged{}
		q := `SELECT i.rowid FROM archive_items i WHERE i.tenant = ?1 AND i.kind = ?2 AND i.started_at < ?3
			AND NOT ` + archiveHeld + `
			AND i.user_id NOT IN (SELECT value FROM json_each(?4))`
		if len(p.Users) > 0 {
			q += ` AND i.user_id IN (SELECT value FROM json_each(?5))`
		}
		rows, err := tx.QueryContext(ctx, `DELETE FROM archive_items WHERE rowid IN (`+q+`
			ORDER BY i.started_at, i.id LIMIT ?6) RETURNING id, blob_id`,
			tenant, p.Kind, p.Before.UnixNano(), jsonIDs(p.ExceptUsers), jsonIDs(p.Users), limit(p.Limit))
		type gone struct{ id, blob string }
		gs, err := collect(rows, err, func(s scanner) (gone, error) {
			var g gone
			return g, s.Scan(&g.id, &g.blob)
		})
		if err != nil || len(gs) == 0 {
			return err
		}
		ids := make([]string, len(gs))
		for i, g := range gs {
			ids[i] = g.id
		}
		for _, table := range []string{"archive_item_parties", "archive_item_tokens"} {
			_, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE tenant = ? AND item_id IN
				(SELECT value FROM json_each(?))`, tenant, jsonIDs(ids))
			if err != nil {
				return err
			}
		}
		out.Items = int64(len(gs))
		slices.Sort(ids)
		blobOf := make(map[string]string, len(gs))
		for _, g := range gs {
			blobOf[g.id] = g.blob
		}
		for _, id := range ids {
			if b := blobOf[id]; b != "" {
				out.BlobIDs = append(out.BlobIDs, b)
			}
		}
		return nil
	})
	if err != nil {
		return store.ArchivePurged{}, fail("purge archive", "archive item", err)
	}
	return out, nil
}

const archiveUploadColumns = `tenant, id, item_id, client_id, state, byte_offset, created_at, updated_at`

func scanArchiveUpload(s scanner) (store.ArchiveUpload, error) {
	var u store.ArchiveUpload
	var created, updated sql.NullInt64
	err := s.Scan(&u.Tenant, &u.ID, &u.ItemID, &u.ClientID, &u.State, &u.Offset, &created, &updated)
	u.CreatedAt, u.UpdatedAt = timeOf(created), timeOf(updated)
	return u, err
}

// PutArchiveUpload inserts a session or moves a stored one forward (see
// store.Archive).
func (db *DB) PutArchiveUpload(ctx context.Context, u store.ArchiveUpload) error {
	if err := store.CheckArchiveUpload(u); err != nil {
		return err
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var offset int64
		err := tx.QueryRowContext(ctx, `SELECT byte_offset FROM archive_uploads WHERE tenant = ? AND id = ?`,
			u.Tenant, u.ID).Scan(&offset)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if err := liveTenant(ctx, tx, u.Tenant); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO archive_uploads (`+archiveUploadColumns+`)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				u.Tenant, u.ID, u.ItemID, u.ClientID, u.State, u.Offset, nanos(u.CreatedAt), nanos(u.UpdatedAt))
			return err
		case err != nil:
			return err
		case u.Offset < offset:
			return call.Errorf(call.Conflict, "archive upload offset must not move backwards")
		}
		_, err = tx.ExecContext(ctx, `UPDATE archive_uploads SET state = ?, byte_offset = ?, updated_at = ?
			WHERE tenant = ? AND id = ?`, u.State, u.Offset, nanos(u.UpdatedAt), u.Tenant, u.ID)
		return err
	})
	return fail("put archive upload", "archive upload", err)
}

// ArchiveUpload returns one session; NotFound if absent.
func (db *DB) ArchiveUpload(ctx context.Context, tenant, id string) (store.ArchiveUpload, error) {
	u, err := scanArchiveUpload(db.read.QueryRowContext(ctx, `SELECT `+archiveUploadColumns+` FROM archive_uploads
		WHERE tenant = ? AND id = ?`, tenant, id))
	return u, fail("archive upload", "archive upload", notFound(err, "archive upload"))
}

// ArchiveUploadByClient returns the session of a client id; NotFound if
// absent.
func (db *DB) ArchiveUploadByClient(ctx context.Context, tenant, clientID string) (store.ArchiveUpload, error) {
	u, err := scanArchiveUpload(db.read.QueryRowContext(ctx, `SELECT `+archiveUploadColumns+` FROM archive_uploads
		WHERE tenant = ? AND client_id = ?`, tenant, clientID))
	return u, fail("archive upload by client", "archive upload", notFound(err, "archive upload"))
}

// ArchiveUploads returns a page of sessions last updated before `before`,
// oldest update first.
func (db *DB) ArchiveUploads(ctx context.Context, tenant string, before time.Time, n int) ([]store.ArchiveUpload, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+archiveUploadColumns+` FROM archive_uploads
		WHERE tenant = ? AND updated_at < ? ORDER BY updated_at, id LIMIT ?`, tenant, before.UnixNano(), limit(n))
	us, err := collect(rows, err, scanArchiveUpload)
	return us, fail("archive uploads", "archive upload", err)
}

// DeleteArchiveUpload removes a session; NotFound if absent.
func (db *DB) DeleteArchiveUpload(ctx context.Context, tenant, id string) error {
	res, err := db.write.ExecContext(ctx, `DELETE FROM archive_uploads WHERE tenant = ? AND id = ?`, tenant, id)
	return fail("delete archive upload", "archive upload", mustAffect(res, err, "archive upload"))
}
