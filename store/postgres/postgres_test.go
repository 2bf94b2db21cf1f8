package postgres

import (
	"crypto/rand"
	"database/sql"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/postgres/pgtest"
	"github.com/ringfence/ringfence/store/storetest"
)

var recordIDs call.IDs

func mustOpen(tb testing.TB, dsn string) *DB {
	tb.Helper()
	db, err := Open(tb.Context(), dsn)
	if err != nil {
		tb.Fatal(err)
	}
	return db
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return mustOpen(t, pgtest.NewDatabase(t))
	})
}

func TestReopen(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.NewDatabase(t)
	db := mustOpen(t, dsn)
	want := store.Tenant{ID: "acme", Name: "Acme", Region: "GB", CreatedAt: time.Unix(1700000000, 123456000).UTC()}
	if err := db.CreateTenant(ctx, want); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db = mustOpen(t, dsn)
	defer db.Close()
	got, err := db.Tenants(ctx)
	if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("Tenants after reopening = %+v, %v; want %+v", got, err, want)
	}

	var applied int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM goose_db_version WHERE version_id > 0`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	files, err := migrations.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	if applied != len(files) {
		t.Errorf("%d migrations recorded after two opens; want %d, each once", applied, len(files))
	}

	// Open again from several nodes at once: they take turns, none fails.
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			db, err := Open(ctx, dsn)
			if err == nil {
				db.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Open: %v", err)
		}
	}

	sqlDB, p := providerOf(t, db)
	defer sqlDB.Close()
	if pending, err := p.HasPending(ctx); err != nil || pending {
		t.Errorf("HasPending after Open = %v, %v; want false", pending, err)
	}
	if res, err := p.Up(ctx); err != nil || len(res) != 0 {
		t.Errorf("second migration run = %v, %v; want a no-op", res, err)
	}
}

// providerOf returns the store's migrations on a database/sql handle.
func providerOf(t *testing.T, db *DB) (*sql.DB, *goose.Provider) {
	t.Helper()
	sqlDB := stdlib.OpenDBFromPool(db.pool)
	p, err := newMigrations(sqlDB)
	if err != nil {
		t.Fatal(err)
	}
	return sqlDB, p
}

func TestUnknownTenant(t *testing.T) {
	db := mustOpen(t, pgtest.NewDatabase(t))
	defer db.Close()
	ctx := t.Context()
	err := db.InsertCalls(ctx, []store.Call{{ID: recordIDs.Next(time.Now()), Tenant: "nobody", StartedAt: time.Now()}})
	if call.ErrorCode(err) != call.NotFound || call.ErrorMessage(err) != "tenant not found" {
		t.Errorf("InsertCalls for an unknown tenant: %v; want NotFound: tenant not found", err)
	}
	err = db.AddAPIKey(ctx, store.APIKey{Tenant: "nobody", Name: "ops"})
	if call.ErrorCode(err) != call.NotFound {
		t.Errorf("AddAPIKey for an unknown tenant: %v; want NotFound", err)
	}
	err = db.PutListEntries(ctx, "nobody", []store.ListEntry{{List: call.DenyList, Pseudonym: random(32)}})
	if call.ErrorCode(err) != call.NotFound {
		t.Errorf("PutListEntries for an unknown tenant: %v; want NotFound", err)
	}
}

// month returns the first instant of the month n months after March 2026.
func month(n int) time.Time { return time.Date(2026, 3+time.Month(n), 1, 0, 0, 0, 0, time.UTC) }

// newPartitioned opens a fresh store whose clock is in mid-April 2026, with
// one tenant.
func newPartitioned(t *testing.T) *DB {
	t.Helper()
	db := mustOpen(t, pgtest.NewDatabase(t))
	t.Cleanup(func() { db.Close() })
	db.Now = func() time.Time { return month(1).Add(14 * 24 * time.Hour) }
	if err := db.CreateTenant(t.Context(), store.Tenant{ID: "acme", Name: "Acme", Region: "GB"}); err != nil {
		t.Fatal(err)
	}
	return db
}

func record(started time.Time) store.Call {
	return store.Call{
		ID: recordIDs.Next(started), Tenant: "acme", Ref: "r", StartedAt: started, Ingress: "sbc-in", Appliance: "node-1",
		Score: 0.5, Action: call.Flag, Review: call.Unreviewed, Sealed: random(40),
	}
}

// partitionOf returns the partitions holding each record, by id.
func partitionOf(t *testing.T, db *DB) map[string]string {
	t.Helper()
	rows, err := db.pool.Query(t.Context(), `SELECT id, tableoid::regclass::text FROM calls`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var id, table string
	_, err = pgx.ForEachRow(rows, []any{&id, &table}, func() error {
		out[id] = table
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func listPartitions(t *testing.T, db *DB) []string {
	t.Helper()
	names, err := partitions(t.Context(), db.pool)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func allIDs(t *testing.T, db *DB) []string {
	t.Helper()
	cs, err := db.Calls(t.Context(), "acme", store.CallFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	slices.Sort(out)
	return out
}

func TestPartitionsOnDemand(t *testing.T) {
	ctx := t.Context()
	db := newPartitioned(t)
	var cs []store.Call
	for _, m := range []int{-1, 0, 1} { // February, March, April 2026
		for d := range 3 {
			cs = append(cs, record(month(m).Add(time.Duration(d)*240*time.Hour+time.Microsecond)))
		}
	}
	cs = append(cs, record(month(2).Add(-time.Microsecond))) // the last instant of April
	if err := db.InsertCalls(ctx, cs); err != nil {
		t.Fatal(err)
	}
	want := []string{"calls_2026_02", "calls_2026_03", "calls_2026_04", "calls_default"}
	if got := listPartitions(t, db); !slices.Equal(got, want) {
		t.Errorf("partitions = %v; want %v", got, want)
	}
	where := partitionOf(t, db)
	for _, c := range cs {
		if want := partitionName(monthOf(c.StartedAt)); where[c.ID] != want {
			t.Errorf("record of %v in %s; want %s", c.StartedAt, where[c.ID], want)
		}
	}
	got, err := db.Calls(ctx, "acme", store.CallFilter{From: month(0), To: month(1)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Errorf("Calls in March = %d; want 3", len(got))
	}

	// A second store (another node) knows the months and makes no DDL;
	// EnsurePartitions ahead is idempotent.
	if err := db.EnsurePartitions(ctx, month(0), month(3).Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := db.EnsurePartitions(ctx, month(0), month(3)); err != nil {
		t.Fatal(err)
	}
	want = []string{"calls_2026_02", "calls_2026_03", "calls_2026_04", "calls_2026_05", "calls_2026_06", "calls_default"}
	if got := listPartitions(t, db); !slices.Equal(got, want) {
		t.Errorf("partitions after EnsurePartitions = %v; want %v", got, want)
	}
	for _, tt := range []struct{ from, to time.Time }{
		{time.Date(0, 12, 1, 0, 0, 0, 0, time.UTC), month(0)},
		{month(0), month(0).AddDate(60, 0, 0)},
	} {
		if err := db.EnsurePartitions(ctx, tt.from, tt.to); call.ErrorCode(err) != call.Invalid {
			t.Errorf("EnsurePartitions(%v, %v) = %v; want Invalid", tt.from, tt.to, err)
		}
	}
}

func TestDropPartitionsBefore(t *testing.T) {
	ctx := t.Context()
	db := newPartitioned(t)
	var cs []store.Call
	for m := -2; m <= 1; m++ { // January to April
		cs = append(cs, record(month(m)), record(month(m+1).Add(-time.Microsecond)))
	}
	if err := db.InsertCalls(ctx, cs); err != nil {
		t.Fatal(err)
	}
	if err := db.AddLabel(ctx, store.Label{Tenant: "acme", RecordID: cs[1].ID, Label: call.Fraud, By: "ana", At: month(1)}); err != nil {
		t.Fatal(err)
	}
	if err := db.AddLabel(ctx, store.Label{Tenant: "acme", RecordID: cs[4].ID, Label: call.Genuine, By: "ana", At: month(1)}); err != nil {
		t.Fatal(err)
	}

	// Mid-March: January and February are entirely before, March is not.
	dropped, err := db.DropPartitionsBefore(ctx, month(0).Add(15*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"calls_2026_01", "calls_2026_02"}; !slices.Equal(dropped, want) {
		t.Errorf("dropped %v; want %v", dropped, want)
	}
	if got, want := listPartitions(t, db), []string{"calls_2026_03", "calls_2026_04", "calls_default"}; !slices.Equal(got, want) {
		t.Errorf("partitions left = %v; want %v", got, want)
	}
	kept := ids(cs[4:])
	if got := allIDs(t, db); !slices.Equal(got, kept) {
		t.Errorf("Calls after retention = %v; want %v", got, kept)
	}
	if _, err := db.Call(ctx, "acme", cs[0].ID); call.ErrorCode(err) != call.NotFound {
		t.Errorf("Call of a dropped record: %v; want NotFound", err)
	}
	var labels int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM labels`).Scan(&labels); err != nil || labels != 1 {
		t.Errorf("labels after retention = %d, %v; want only the kept record's", labels, err)
	}

	// A boundary instant drops the month before it only; a second run drops
	// nothing more.
	dropped, err = db.DropPartitionsBefore(ctx, month(1))
	if err != nil || !slices.Equal(dropped, []string{"calls_2026_03"}) {
		t.Errorf("DropPartitionsBefore(April) = %v, %v; want [calls_2026_03]", dropped, err)
	}
	dropped, err = db.DropPartitionsBefore(ctx, month(1))
	if err != nil || len(dropped) != 0 {
		t.Errorf("DropPartitionsBefore again = %v, %v; want nothing", dropped, err)
	}
	if got := allIDs(t, db); !slices.Equal(got, ids(cs[6:])) {
		t.Errorf("Calls after the second retention = %v; want April's", got)
	}

	// A dropped month comes back on demand if a late record arrives.
	late := record(month(0).Add(time.Hour))
	if err := db.InsertCalls(ctx, []store.Call{late}); err != nil {
		t.Fatal(err)
	}
	if where := partitionOf(t, db)[late.ID]; where != "calls_2026_03" {
		t.Errorf("late record in %s; want calls_2026_03", where)
	}
}

func TestDefaultPartition(t *testing.T) {
	ctx := t.Context()
	db := newPartitioned(t)
	far := []store.Call{
		record(time.Date(2031, 7, 4, 12, 0, 0, 0, time.UTC)), // a clock years ahead
		record(time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC)),
		record(time.Time{}),                           // the zero time
		record(month(1).AddDate(0, monthsAhead+1, 0)), // just past the window
	}
	near := record(month(1))
	if err := db.InsertCalls(ctx, append(slices.Clone(far), near)); err != nil {
		t.Fatal(err)
	}
	if got, want := listPartitions(t, db), []string{"calls_2026_04", "calls_default"}; !slices.Equal(got, want) {
		t.Errorf("partitions = %v; want %v", got, want)
	}
	where := partitionOf(t, db)
	for _, c := range far {
		if where[c.ID] != "calls_default" {
			t.Errorf("record of %v in %s; want calls_default", c.StartedAt, where[c.ID])
		}
		got, err := db.Call(ctx, "acme", c.ID)
		if err != nil || !got.StartedAt.Equal(c.StartedAt) {
			t.Errorf("Call of a record in calls_default = %v, %v", got.StartedAt, err)
		}
	}
	// Retried: still one each.
	if err := db.InsertCalls(ctx, far); err != nil {
		t.Fatal(err)
	}
	if n := len(allIDs(t, db)); n != 5 {
		t.Errorf("%d records after a retry; want 5", n)
	}

	// Making the month of a record held by calls_default moves it over.
	if err := db.AddLabel(ctx, store.Label{Tenant: "acme", RecordID: far[0].ID, Label: call.Fraud, By: "ana", At: month(1)}); err != nil {
		t.Fatal(err)
	}
	if err := db.EnsurePartitions(ctx, far[0].StartedAt, far[0].StartedAt); err != nil {
		t.Fatal(err)
	}
	if where := partitionOf(t, db)[far[0].ID]; where != "calls_2031_07" {
		t.Errorf("record in %s after EnsurePartitions; want calls_2031_07", where)
	}
	if got, err := db.Call(ctx, "acme", far[0].ID); err != nil || got.Review != call.Fraud {
		t.Errorf("moved record = %+v, %v; want it labelled", got, err)
	}

	// Retention deletes the old rows of calls_default too.
	if _, err := db.DropPartitionsBefore(ctx, month(0)); err != nil {
		t.Fatal(err)
	}
	if got, want := allIDs(t, db), ids([]store.Call{far[0], far[3], near}); !slices.Equal(got, want) {
		t.Errorf("Calls after retention = %v; want the 2031 and 2026 records", got)
	}
}

// TestPartitionsConcurrent makes the same months from several stores (as
// nodes would) at once.
func TestPartitionsConcurrent(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := t.Context()
	first := mustOpen(t, dsn)
	defer first.Close()
	if err := first.CreateTenant(ctx, store.Tenant{ID: "acme", Name: "Acme", Region: "GB"}); err != nil {
		t.Fatal(err)
	}
	const nodes = 4
	errs := make(chan error, nodes)
	for range nodes {
		go func() {
			db, err := Open(ctx, dsn)
			if err != nil {
				errs <- err
				return
			}
			defer db.Close()
			db.Now = func() time.Time { return month(0) }
			var cs []store.Call
			for m := -3; m <= 2; m++ {
				cs = append(cs, record(month(m).Add(time.Hour)))
			}
			errs <- db.InsertCalls(ctx, cs)
		}()
	}
	for range nodes {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := listPartitions(t, first); len(got) != 7 {
		t.Errorf("partitions = %v; want six months and the default", got)
	}
	if n := len(allIDs(t, first)); n != nodes*6 {
		t.Errorf("%d records; want %d", n, nodes*6)
	}
}

// TestCallsPlans checks that the list queries use the indexes meant for
// them once a tenant has enough records for it to matter.
func TestCallsPlans(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 20k records")
	}
	ctx := t.Context()
	db := newPartitioned(t)
	start := month(0)
	for b := range 20 {
		batch := make([]store.Call, 1000)
		for i := range batch {
			c := record(start.Add(time.Duration(b*1000+i) * time.Minute))
			c.Action = call.Allow
			if i%100 == 0 {
				c.Action = call.Block
			}
			batch[i] = c
		}
		if err := db.InsertCalls(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	cs, err := db.Calls(ctx, "acme", store.CallFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if err := db.AddLabel(ctx, store.Label{Tenant: "acme", RecordID: c.ID, Label: call.Fraud, By: "ana", At: month(1)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.pool.Exec(ctx, `ANALYZE calls`); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, query string
		args        []any
		want        string
	}{
		{"by id", `SELECT id FROM calls WHERE tenant = $1 AND id = $2`, []any{"acme", "01J"}, "calls_2026_03_pkey"},
		{"newest", `SELECT id FROM calls WHERE tenant = $1 ORDER BY id DESC LIMIT $2`, []any{"acme", 100}, "Scan Backward using calls_2026_03_pkey"},
		{"blocked", `SELECT id FROM calls WHERE tenant = $1 AND action = $2 AND action <> 'allow' ORDER BY id DESC LIMIT $3`,
			[]any{"acme", "block", 100}, "calls_2026_03_tenant_action_id_idx"},
		{"fraud", `SELECT id FROM calls WHERE tenant = $1 AND review = $2 AND review <> 'unreviewed' ORDER BY id DESC LIMIT $3`,
			[]any{"acme", "fraud", 100}, "calls_2026_03_tenant_review_id_idx"},
		{"an hour", `SELECT id FROM calls WHERE tenant = $1 AND started_at >= $2 AND started_at < $3 ORDER BY id DESC LIMIT $4`,
			[]any{"acme", start.Add(240 * time.Hour), start.Add(241 * time.Hour), 100}, "calls_2026_03_tenant_started_at_idx"},
	} {
		rows, err := db.pool.Query(ctx, `EXPLAIN `+tt.query, tt.args...)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		plan := strings.Join(lines, "\n")
		t.Logf("%s:\n%s", tt.name, plan)
		if !strings.Contains(plan, tt.want) {
			t.Errorf("%s: plan does not use %s:\n%s", tt.name, tt.want, plan)
		}
	}
}

func ids(cs []store.Call) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	slices.Sort(out)
	return out
}

// BenchmarkInsertCalls measures InsertCalls on fresh records (COPY straight
// into calls) and, as "retry", on batches holding one stored record, which
// take the staging path.
func BenchmarkInsertCalls(b *testing.B) {
	for _, bc := range []struct {
		name  string
		size  int
		retry bool
	}{{"batch=1", 1, false}, {"batch=256", 256, false}, {"batch=256/retry", 256, true}} {
		b.Run(bc.name, func(b *testing.B) {
			db := mustOpen(b, pgtest.NewDatabase(b))
			defer db.Close()
			ctx := b.Context()
			if err := db.CreateTenant(ctx, store.Tenant{ID: "acme", Name: "Acme", Region: "GB"}); err != nil {
				b.Fatal(err)
			}
			if err := db.EnsurePartitions(ctx, time.Now(), time.Now().AddDate(0, 1, 0)); err != nil {
				b.Fatal(err)
			}
			batch := make([]store.Call, bc.size)
			for i := range batch {
				batch[i] = store.Call{
					Tenant: "acme", Ref: "a1b2c3d4-e5f6", Ingress: "sbc-in", Appliance: "node-1",
					CallerPseudonym: random(32), DialledPseudonym: random(32), UserPseudonym: random(32),
					Score: 0.42, Action: call.Allow, Markers: []string{"cli.unverified", "route.international"},
					Verdict: []byte(`{"live":{"score":0.42,"action":"allow","markers":[{"code":"cli.unverified","weight":1.1},` +
						`{"code":"route.international","weight":0.6}],"policy":"3","evaluated_at":"2025-03-14T15:09:26.535897Z"}}`),
					Sealed: random(300),
				}
			}
			fresh := batch
			if bc.retry {
				batch[0].ID, batch[0].StartedAt = recordIDs.Next(time.Now()), time.Now()
				if err := db.InsertCalls(ctx, batch[:1]); err != nil {
					b.Fatal(err)
				}
				fresh = batch[1:]
			}
			n := 0
			for b.Loop() {
				now := time.Now()
				for i := range fresh {
					fresh[i].ID, fresh[i].StartedAt = recordIDs.Next(now), now
				}
				if err := db.InsertCalls(ctx, batch); err != nil {
					b.Fatal(err)
				}
				n += len(batch)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

func random(n int) []byte {
	p := make([]byte, n)
	rand.Read(p)
	return p
}
