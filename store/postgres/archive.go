package postgres

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

var _ store.Archive = (*DB)(nil)

// archiveQuerier is a pgx.Tx or the pool.
type archiveQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// liveTenant returns NotFound unless the tenant exists and is not
// offboarded. It share-locks the tenant's row, so DeleteTenantData, which
// updates it, cannot commit between the check and the caller's write.
func liveTenant(ctx context.Context, tx pgx.Tx, tenant string) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM tenants WHERE id = $1 AND deleted_at IS NULL FOR SHARE`, tenant).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return call.Errorf(call.NotFound, "tenant not found")
	}
	return err
}

// nonNil is ids as an array parameter: nil becomes empty, as a NULL array
// would match nothing.
func nonNil(ids []string) []string {
	if ids == nil {
		return []string{}
	}
	return ids
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
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		if err := liveTenant(ctx, tx, u.Tenant); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO archive_users (tenant, id, sealed, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (tenant, id) DO UPDATE SET sealed = excluded.sealed`,
			u.Tenant, u.ID, u.Sealed, ts(u.CreatedAt))
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM archive_user_numbers WHERE tenant = $1 AND user_id = $2`, u.Tenant, u.ID)
		if err != nil || len(u.Numbers) == 0 {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO archive_user_numbers (tenant, user_id, pseudonym)
			SELECT $1, $2, p FROM unnest($3::bytea[]) AS p ON CONFLICT DO NOTHING`, u.Tenant, u.ID, u.Numbers)
		return err
	})
	return fail("put archive user", "archive user", err)
}

const archiveUserColumns = `tenant, id, sealed, offboarded_at, created_at`

// archiveUsers runs a query of archiveUserColumns and fills the users'
// numbers.
func (db *DB) archiveUsers(ctx context.Context, tenant, q string, args ...any) ([]store.ArchiveUser, error) {
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	us, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.ArchiveUser, error) {
		var u store.ArchiveUser
		var off, created *time.Time
		err := r.Scan(&u.Tenant, &u.ID, &u.Sealed, &off, &created)
		u.OffboardedAt, u.CreatedAt = timeOf(off), timeOf(created)
		return u, err
	})
	if err != nil || len(us) == 0 {
		return us, err
	}
	ids := make([]string, len(us))
	at := make(map[string]int, len(us))
	for i, u := range us {
		ids[i], at[u.ID] = u.ID, i
	}
	rows, err = db.pool.Query(ctx, `SELECT user_id, pseudonym FROM archive_user_numbers
		WHERE tenant = $1 AND user_id = ANY($2) ORDER BY user_id, pseudonym`, tenant, ids)
	if err != nil {
		return nil, err
	}
	var id string
	var p []byte
	_, err = pgx.ForEachRow(rows, []any{&id, &p}, func() error {
		us[at[id]].Numbers = append(us[at[id]].Numbers, slices.Clone(p))
		return nil
	})
	return us, err
}

// ArchiveUser returns one user with its numbers.
func (db *DB) ArchiveUser(ctx context.Context, tenant, id string) (store.ArchiveUser, error) {
	us, err := db.archiveUsers(ctx, tenant, `SELECT `+archiveUserColumns+` FROM archive_users WHERE tenant = $1 AND id = $2`, tenant, id)
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
		WHERE tenant = $1 AND id > $2 ORDER BY id LIMIT $3`, tenant, after, limit(n))
	return us, fail("archive users", "archive user", err)
}

// ArchiveUsersByNumber returns the users with a number of the pseudonym.
func (db *DB) ArchiveUsersByNumber(ctx context.Context, tenant string, pseudonym []byte) ([]store.ArchiveUser, error) {
	us, err := db.archiveUsers(ctx, tenant, `SELECT `+archiveUserColumns+` FROM archive_users WHERE tenant = $1 AND id IN
		(SELECT user_id FROM archive_user_numbers WHERE tenant = $1 AND pseudonym = $2) ORDER BY id`, tenant, pseudonym)
	return us, fail("archive users by number", "archive user", err)
}

// OffboardArchiveUser marks a user offboarded; NotFound if absent, Conflict
// if offboarded already.
func (db *DB) OffboardArchiveUser(ctx context.Context, tenant, id string, at time.Time) error {
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var off *time.Time
		err := tx.QueryRow(ctx, `SELECT offboarded_at FROM archive_users WHERE tenant = $1 AND id = $2 FOR UPDATE`,
			tenant, id).Scan(&off)
		if errors.Is(err, pgx.ErrNoRows) {
			return call.Errorf(call.NotFound, "archive user not found")
		}
		if err != nil {
			return err
		}
		if off != nil {
			return call.Errorf(call.Conflict, "archive user offboarded already")
		}
		if at.IsZero() {
			at = db.now()
		}
		_, err = tx.Exec(ctx, `UPDATE archive_users SET offboarded_at = $1 WHERE tenant = $2 AND id = $3`, at, tenant, id)
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

// PutArchiveContacts replaces a user's contact list in one transaction. It
// locks the user's row, so concurrent replacements of one list queue.
func (db *DB) PutArchiveContacts(ctx context.Context, tenant, userID string, cs []store.ArchiveContact) error {
	if err := checkArchiveContacts(cs); err != nil {
		return err
	}
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM archive_users WHERE tenant = $1 AND id = $2 FOR UPDATE`, tenant, userID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return call.Errorf(call.NotFound, "archive user not found")
		}
		if err != nil {
			return err
		}
		for _, table := range []string{"archive_contact_numbers", "archive_contacts"} {
			if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE tenant = $1 AND user_id = $2`, tenant, userID); err != nil {
				return err
			}
		}
		var b pgx.Batch
		for _, c := range cs {
			b.Queue(`INSERT INTO archive_contacts (tenant, user_id, id, sealed, created_at) VALUES ($1, $2, $3, $4, $5)`,
				tenant, userID, c.ID, c.Sealed, ts(c.CreatedAt))
			if len(c.Numbers) > 0 {
				b.Queue(`INSERT INTO archive_contact_numbers (tenant, user_id, contact_id, pseudonym)
					SELECT $1, $2, $3, p FROM unnest($4::bytea[]) AS p ON CONFLICT DO NOTHING`, tenant, userID, c.ID, c.Numbers)
			}
		}
		if b.Len() == 0 {
			return nil
		}
		return tx.SendBatch(ctx, &b).Close()
	})
	return fail("put archive contacts", "archive contact", err)
}

// ArchiveContacts returns a user's contacts by id.
func (db *DB) ArchiveContacts(ctx context.Context, tenant, userID string) ([]store.ArchiveContact, error) {
	rows, err := db.pool.Query(ctx, `SELECT tenant, user_id, id, sealed, created_at FROM archive_contacts
		WHERE tenant = $1 AND user_id = $2 ORDER BY id`, tenant, userID)
	if err != nil {
		return nil, fail("archive contacts", "archive contact", err)
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.ArchiveContact, error) {
		var c store.ArchiveContact
		var created *time.Time
		err := r.Scan(&c.Tenant, &c.UserID, &c.ID, &c.Sealed, &created)
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
	rows, err = db.pool.Query(ctx, `SELECT contact_id, pseudonym FROM archive_contact_numbers
		WHERE tenant = $1 AND user_id = $2 ORDER BY contact_id, pseudonym`, tenant, userID)
	if err != nil {
		return nil, fail("archive contacts", "archive contact", err)
	}
	var id string
	var p []byte
	_, err = pgx.ForEachRow(rows, []any{&id, &p}, func() error {
		if i, ok := at[id]; ok {
			cs[i].Numbers = append(cs[i].Numbers, slices.Clone(p))
		}
		return nil
	})
	return cs, fail("archive contacts", "archive contact", err)
}

const archiveItemColumns = `tenant, id, client_id, kind, user_id, direction, started_at, duration_ns, result,
	sealed, blob_id, call_id, size, sha256, chain_day, created_at`

// archiveItems runs a query of archiveItemColumns on q and fills the
// items' parties and tokens.
func archiveItems(ctx context.Context, q archiveQuerier, tenant, query string, args ...any) ([]store.ArchiveItem, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	its, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.ArchiveItem, error) {
		var it store.ArchiveItem
		var started time.Time
		var created *time.Time
		var dur int64
		err := r.Scan(&it.Tenant, &it.ID, &it.ClientID, &it.Kind, &it.UserID, &it.Direction, &started, &dur, &it.Result,
			&it.Sealed, &it.BlobID, &it.CallID, &it.Size, &it.SHA256, &it.ChainDay, &created)
		it.StartedAt, it.CreatedAt, it.Duration = started.UTC(), timeOf(created), time.Duration(dur)
		return it, err
	})
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
		{`SELECT item_id, pseudonym FROM archive_item_parties WHERE tenant = $1 AND item_id = ANY($2)
			ORDER BY item_id, pseudonym`, func(it *store.ArchiveItem) *[][]byte { return &it.Parties }},
		{`SELECT item_id, token FROM archive_item_tokens WHERE tenant = $1 AND item_id = ANY($2)
			ORDER BY item_id, token`, func(it *store.ArchiveItem) *[][]byte { return &it.Tokens }},
	} {
		rows, err := q.Query(ctx, set.query, tenant, ids)
		if err != nil {
			return nil, err
		}
		var id string
		var b []byte
		_, err = pgx.ForEachRow(rows, []any{&id, &b}, func() error {
			f := set.field(&its[at[id]])
			*f = append(*f, slices.Clone(b))
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return its, nil
}

// PutArchiveItem stores an item unless the tenant has one with its client
// id, which it returns instead (see store.Archive). A concurrent put of the
// same client id waits for the first to commit (the unique index) and then
// returns its item.
func (db *DB) PutArchiveItem(ctx context.Context, it store.ArchiveItem) (store.ArchiveItem, bool, error) {
	if err := store.CheckArchiveItem(it); err != nil {
		return store.ArchiveItem{}, false, err
	}
	var stored store.ArchiveItem
	var created bool
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		if err := liveTenant(ctx, tx, it.Tenant); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO archive_items (`+archiveItemColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
			ON CONFLICT (tenant, client_id) DO NOTHING`,
			it.Tenant, it.ID, it.ClientID, it.Kind, it.UserID, it.Direction, it.StartedAt, int64(it.Duration),
			it.Result, it.Sealed, it.BlobID, it.CallID, it.Size, it.SHA256, it.ChainDay, ts(it.CreatedAt))
		if err != nil {
			return err
		}
		created = tag.RowsAffected() == 1
		if created {
			var b pgx.Batch
			if len(it.Parties) > 0 {
				b.Queue(`INSERT INTO archive_item_parties (tenant, item_id, pseudonym)
					SELECT $1, $2, p FROM unnest($3::bytea[]) AS p ON CONFLICT DO NOTHING`, it.Tenant, it.ID, it.Parties)
			}
			if len(it.Tokens) > 0 {
				b.Queue(`INSERT INTO archive_item_tokens (tenant, item_id, token)
					SELECT $1, $2, k FROM unnest($3::bytea[]) AS k ON CONFLICT DO NOTHING`, it.Tenant, it.ID, it.Tokens)
			}
			if b.Len() > 0 {
				if err := tx.SendBatch(ctx, &b).Close(); err != nil {
					return err
				}
			}
		}
		its, err := archiveItems(ctx, tx, it.Tenant, `SELECT `+archiveItemColumns+` FROM archive_items
			WHERE tenant = $1 AND client_id = $2`, it.Tenant, it.ClientID)
		if err != nil {
			return err
		}
		if len(its) != 1 {
			return errors.New("item of the client id vanished")
		}
		stored = its[0]
		return nil
	})
	if err != nil {
		return store.ArchiveItem{}, false, fail("put archive item", "archive item", err)
	}
	return stored, created, nil
}

// ArchiveItem returns one item with its parties and tokens.
func (db *DB) ArchiveItem(ctx context.Context, tenant, id string) (store.ArchiveItem, error) {
	its, err := archiveItems(ctx, db.pool, tenant, `SELECT `+archiveItemColumns+` FROM archive_items
		WHERE tenant = $1 AND id = $2`, tenant, id)
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
	query := `SELECT ` + archiveItemColumns + ` FROM archive_items WHERE tenant = $1`
	args := []any{tenant}
	param := func(arg any) string {
		args = append(args, arg)
		return `$` + strconv.Itoa(len(args))
	}
	if q.UserID != "" {
		query += ` AND user_id = ` + param(q.UserID)
	}
	if q.Direction != "" {
		query += ` AND direction = ` + param(q.Direction)
	}
	if q.Kind != "" {
		query += ` AND kind = ` + param(q.Kind)
	}
	if !q.From.IsZero() {
		query += ` AND started_at >= ` + param(q.From)
	}
	if !q.To.IsZero() {
		query += ` AND started_at < ` + param(q.To)
	}
	if len(q.Party) > 0 {
		query += ` AND id IN (SELECT item_id FROM archive_item_parties WHERE tenant = $1 AND pseudonym = ` + param(q.Party) + `)`
	}
	for _, k := range q.Tokens {
		query += ` AND id IN (SELECT item_id FROM archive_item_tokens WHERE tenant = $1 AND token = ` + param(k) + `)`
	}
	if q.BeforeID != "" {
		query += ` AND (started_at, id) < (` + param(q.BeforeStartedAt) + `, ` + param(q.BeforeID) + `)`
	}
	query += ` ORDER BY started_at DESC, id DESC LIMIT ` + param(limit(q.Limit))
	its, err := archiveItems(ctx, db.pool, tenant, query, args...)
	return its, fail("search archive", "archive item", err)
}

// ArchiveDayItems returns a page of one chain day's items by id.
func (db *DB) ArchiveDayItems(ctx context.Context, tenant, day, after string, n int) ([]store.ArchiveItem, error) {
	if err := store.CheckArchiveDay(day); err != nil {
		return nil, err
	}
	its, err := archiveItems(ctx, db.pool, tenant, `SELECT `+archiveItemColumns+` FROM archive_items
		WHERE tenant = $1 AND chain_day = $2 AND id > $3 ORDER BY id LIMIT $4`, tenant, day, after, limit(n))
	return its, fail("archive day items", "archive item", err)
}

// PutArchiveHold places a legal hold; Conflict if its id is stored.
func (db *DB) PutArchiveHold(ctx context.Context, h store.ArchiveHold) error {
	if err := store.CheckArchiveHold(h); err != nil {
		return err
	}
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		if err := liveTenant(ctx, tx, h.Tenant); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO archive_holds
			(tenant, id, scope, user_id, case_id, from_at, to_at, reason, placed_by, placed_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			h.Tenant, h.ID, h.Scope, h.UserID, h.CaseID, ts(h.From), ts(h.To), h.Reason, h.PlacedBy, ts(h.PlacedAt))
		return err
	})
	return fail("put archive hold", "archive hold", err)
}

// LiftArchiveHold lifts a hold; NotFound if absent, Conflict if lifted
// already.
func (db *DB) LiftArchiveHold(ctx context.Context, tenant, id, by string, at time.Time) error {
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var lifted *time.Time
		var liftedBy string
		err := tx.QueryRow(ctx, `SELECT lifted_by, lifted_at FROM archive_holds WHERE tenant = $1 AND id = $2 FOR UPDATE`,
			tenant, id).Scan(&liftedBy, &lifted)
		if errors.Is(err, pgx.ErrNoRows) {
			return call.Errorf(call.NotFound, "archive hold not found")
		}
		if err != nil {
			return err
		}
		if lifted != nil || liftedBy != "" {
			return call.Errorf(call.Conflict, "archive hold lifted already")
		}
		if at.IsZero() {
			at = db.now()
		}
		_, err = tx.Exec(ctx, `UPDATE archive_holds SET lifted_by = $1, lifted_at = $2 WHERE tenant = $3 AND id = $4`,
			by, at, tenant, id)
		return err
	})
	return fail("lift archive hold", "archive hold", err)
}

// ArchiveHolds returns the tenant's holds by id, only active ones if
// activeOnly.
func (db *DB) ArchiveHolds(ctx context.Context, tenant string, activeOnly bool) ([]store.ArchiveHold, error) {
	q := `SELECT tenant, id, scope, user_id, case_id, from_at, to_at, reason, placed_by, placed_at, lifted_by, lifted_at
		FROM archive_holds WHERE tenant = $1`
	if activeOnly {
		q += ` AND lifted_at IS NULL AND lifted_by = ''`
	}
	rows, err := db.pool.Query(ctx, q+` ORDER BY id`, tenant)
	if err != nil {
		return nil, fail("archive holds", "archive hold", err)
	}
	hs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.ArchiveHold, error) {
		var h store.ArchiveHold
		var from, to, placed, lifted *time.Time
		err := r.Scan(&h.Tenant, &h.ID, &h.Scope, &h.UserID, &h.CaseID, &from, &to, &h.Reason, &h.PlacedBy, &placed,
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
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		if err := liveTenant(ctx, tx, tenant); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO archive_retention (tenant, settings) VALUES ($1, $2)
			ON CONFLICT (tenant) DO UPDATE SET settings = excluded.settings`, tenant, settings)
		return err
	})
	return fail("put archive retention", "archive retention settings", err)
}

// ArchiveRetention returns the stored settings, nil if none.
func (db *DB) ArchiveRetention(ctx context.Context, tenant string) ([]byte, error) {
	var settings []byte
	err := db.pool.QueryRow(ctx, `SELECT settings FROM archive_retention WHERE tenant = $1`, tenant).Scan(&settings)
	if errors.Is(err, pgx.ErrNoRows) {
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
// store.Archive). The holds are those committed when its statement starts.
func (db *DB) PurgeArchive(ctx context.Context, tenant string, p store.ArchivePurge) (store.ArchivePurged, error) {
	if err := store.CheckArchivePurge(p); err != nil {
		return store.ArchivePurged{}, err
	}
	var out store.ArchivePurged
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		out = store.ArchivePurged{}
		args := []any{tenant, p.Kind, p.Before, nonNil(p.ExceptUsers), limit(p.Limit)}
		q := `SELECT i.tenant, i.id FROM archive_items i WHERE i.tenant = $1 AND i.kind = $2 AND i.started_at < $3
			AND NOT ` + archiveHeld + ` AND i.user_id <> ALL($4::text[])`
		if len(p.Users) > 0 {
			args = append(args, p.Users)
			q += ` AND i.user_id = ANY($6::text[])`
		}
		rows, err := tx.Query(ctx, `DELETE FROM archive_items WHERE (tenant, id) IN (`+q+`
			ORDER BY i.started_at, i.id LIMIT $5) RETURNING id, blob_id`, args...)
		if err != nil {
			return err
		}
		type gone struct{ id, blob string }
		gs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (gone, error) {
			var g gone
			return g, r.Scan(&g.id, &g.blob)
		})
		if err != nil || len(gs) == 0 {
			return err
		}
		slices.SortFunc(gs, func(a, b gone) int { return strings.Compare(a.id, b.id) })
		ids := make([]string, len(gs))
		for i, g := range gs {
			ids[i] = g.id
			if g.blob != "" {
				out.BlobIDs = append(out.BlobIDs, g.blob)
			}
		}
		for _, table := range []string{"archive_item_parties", "archive_item_tokens"} {
			_, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE tenant = $1 AND item_id = ANY($2)`, tenant, ids)
			if err != nil {
				return err
			}
		}
		out.Items = int64(len(gs))
		return nil
	})
	if err != nil {
		return store.ArchivePurged{}, fail("purge archive", "archive item", err)
	}
	return out, nil
}

const archiveUploadColumns = `tenant, id, item_id, client_id, state, byte_offset, created_at, updated_at`

func scanArchiveUpload(r pgx.Row) (store.ArchiveUpload, error) {
	var u store.ArchiveUpload
	var created, updated *time.Time
	err := r.Scan(&u.Tenant, &u.ID, &u.ItemID, &u.ClientID, &u.State, &u.Offset, &created, &updated)
	u.CreatedAt, u.UpdatedAt = timeOf(created), timeOf(updated)
	return u, err
}

// PutArchiveUpload inserts a session or moves a stored one forward (see
// store.Archive). The update compares offsets in its statement, so two
// writers of one session cannot both move it.
func (db *DB) PutArchiveUpload(ctx context.Context, u store.ArchiveUpload) error {
	if err := store.CheckArchiveUpload(u); err != nil {
		return err
	}
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var offset int64
		err := tx.QueryRow(ctx, `SELECT byte_offset FROM archive_uploads WHERE tenant = $1 AND id = $2 FOR UPDATE`,
			u.Tenant, u.ID).Scan(&offset)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if err := liveTenant(ctx, tx, u.Tenant); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO archive_uploads (`+archiveUploadColumns+`)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				u.Tenant, u.ID, u.ItemID, u.ClientID, u.State, u.Offset, ts(u.CreatedAt), ts(u.UpdatedAt))
			return err
		case err != nil:
			return err
		case u.Offset < offset:
			return call.Errorf(call.Conflict, "archive upload offset must not move backwards")
		}
		_, err = tx.Exec(ctx, `UPDATE archive_uploads SET state = $1, byte_offset = $2, updated_at = $3
			WHERE tenant = $4 AND id = $5`, u.State, u.Offset, ts(u.UpdatedAt), u.Tenant, u.ID)
		return err
	})
	return fail("put archive upload", "archive upload", err)
}

// ArchiveUpload returns one session; NotFound if absent.
func (db *DB) ArchiveUpload(ctx context.Context, tenant, id string) (store.ArchiveUpload, error) {
	u, err := scanArchiveUpload(db.pool.QueryRow(ctx, `SELECT `+archiveUploadColumns+` FROM archive_uploads
		WHERE tenant = $1 AND id = $2`, tenant, id))
	return u, fail("archive upload", "archive upload", err)
}

// ArchiveUploadByClient returns the session of a client id; NotFound if
// absent.
func (db *DB) ArchiveUploadByClient(ctx context.Context, tenant, clientID string) (store.ArchiveUpload, error) {
	u, err := scanArchiveUpload(db.pool.QueryRow(ctx, `SELECT `+archiveUploadColumns+` FROM archive_uploads
		WHERE tenant = $1 AND client_id = $2`, tenant, clientID))
	return u, fail("archive upload by client", "archive upload", err)
}

// ArchiveUploads returns a page of sessions last updated before `before`,
// oldest update first.
func (db *DB) ArchiveUploads(ctx context.Context, tenant string, before time.Time, n int) ([]store.ArchiveUpload, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+archiveUploadColumns+` FROM archive_uploads
		WHERE tenant = $1 AND updated_at < $2 ORDER BY updated_at, id LIMIT $3`, tenant, before, limit(n))
	if err != nil {
		return nil, fail("archive uploads", "archive upload", err)
	}
	us, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.ArchiveUpload, error) { return scanArchiveUpload(r) })
	return us, fail("archive uploads", "archive upload", err)
}

// DeleteArchiveUpload removes a session; NotFound if absent.
func (db *DB) DeleteArchiveUpload(ctx context.Context, tenant, id string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM archive_uploads WHERE tenant = $1 AND id = $2`, tenant, id)
	return fail("delete archive upload", "archive upload", mustAffect(tag, err, "archive upload"))
}
