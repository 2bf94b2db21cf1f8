package node

import (
	"bytes"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/privacy"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/sqlite"
)

// fillSealed writes a value of every sealed kind for tenant: calls (with a
// user ref and signalling), a label with a note, list entries, a customer
// link and a case.
func fillSealed(t *testing.T, e *privEnv, tenant string, numbers []string) []*call.Call {
	t.Helper()
	ctx := t.Context()
	var calls []*call.Call
	for i, num := range numbers {
		c, err := e.n.Screen(ctx, Incoming{Tenant: tenant, Caller: num, Dialled: "+442079460123", UserRef: "cust-" + string(rune('a'+i)),
			Signalling: call.Signalling{From: "<sip:" + num + "@carrier.example>", Verstat: "TN-Validation-Passed-A"}})
		if err != nil {
			t.Fatal(err)
		}
		calls = append(calls, c)
		e.clk.Add(time.Minute)
	}
	if _, err := e.n.Label(ctx, tenant, calls[0].ID, call.Label{Label: call.Genuine, By: "ana", Note: "known customer"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.n.AddListEntry(ctx, tenant, call.DNOList, numbers[len(numbers)-1], "inbound only", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.n.OpenCase(ctx, tenant, CaseRequest{Type: privacy.Access, Number: numbers[0], UserRef: "cust-a"}); err != nil {
		t.Fatal(err)
	}
	if err := e.n.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	return calls
}

// sealedRows returns every stored sealed value of the tenant, by kind.
func sealedRows(t *testing.T, st store.Store, tenant string) map[string][]store.SealedRow {
	t.Helper()
	out := map[string][]store.SealedRow{}
	for _, kind := range sealedKinds {
		for after := ""; ; {
			rows, err := st.SealedRows(t.Context(), tenant, kind, after, 1000)
			if err != nil {
				t.Fatal(err)
			}
			out[kind] = append(out[kind], rows...)
			if len(rows) < 1000 {
				break
			}
			after = rows[len(rows)-1].Row
		}
	}
	return out
}

// TestKeyRotationRewrapRetire rotates a tenant's data key, screens more
// calls, rewraps and checks that no stored ciphertext of any kind is left
// under the old version; retiring then refuses a ciphertext kept from
// before the rewrap. Retiring before the rewrap is refused.
func TestKeyRotationRewrapRetire(t *testing.T) {
	clk := newPrivClock(time.Date(2025, 5, 1, 9, 0, 0, 0, time.UTC))
	e := openPrivEnv(t, clk)
	ctx := t.Context()
	if _, _, err := e.n.CreateTenant(ctx, "bank", "", "GB"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.n.CreateTenant(ctx, "other", "", "GB"); err != nil {
		t.Fatal(err)
	}
	before := fillSealed(t, e, "bank", []string{"+447400123456", "+447400123457", "+447400123458"})
	fillSealed(t, e, "other", []string{"+447400123456"})
	k, _ := e.n.tenantKeys("bank")
	old := k.KeyVersion()
	ok, _ := e.n.tenantKeys("other")
	otherV := ok.KeyVersion()
	oldRows := sealedRows(t, e.st, "bank")
	for _, kind := range sealedKinds {
		if len(oldRows[kind]) == 0 {
			t.Fatalf("no %s value stored before the rotation; the test would prove nothing", kind)
		}
	}

	v, err := e.n.RotateKey(ctx, "bank")
	if err != nil {
		t.Fatal(err)
	}
	if v != old+1 {
		t.Fatalf("rotation gave version %d after %d", v, old)
	}
	after := fillSealed(t, e, "bank", []string{"+447400223456", "+447400223457"})
	for _, kind := range sealedKinds {
		var olds, news int
		for _, r := range sealedRows(t, e.st, "bank")[kind] {
			switch cv, _ := seal.CiphertextVersion(r.Sealed); cv {
			case old:
				olds++
			case v:
				news++
			}
		}
		if olds == 0 || news == 0 {
			t.Errorf("%s between rotation and rewrap: %d under v%d, %d under v%d; want both", kind, olds, old, news, v)
		}
	}
	if _, err := e.n.RetireKeys(ctx, "bank"); call.ErrorCode(err) != call.Conflict {
		t.Fatalf("retire before the rewrap: %v; want Conflict", err)
	}
	// Nothing was retired: old values still open.
	for _, c := range before {
		if _, err := e.n.Call(ctx, "bank", c.ID); err != nil {
			t.Fatalf("old record after the refused retire: %v", err)
		}
	}

	rep, err := e.n.Rewrap(ctx, "bank")
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range sealedKinds {
		if rep.Resealed[kind] != len(oldRows[kind]) {
			t.Errorf("rewrap resealed %d %s values; %d were under the old key", rep.Resealed[kind], kind, len(oldRows[kind]))
		}
	}
	for kind, rows := range sealedRows(t, e.st, "bank") {
		for _, r := range rows {
			if cv, ok := seal.CiphertextVersion(r.Sealed); !ok || cv != v {
				t.Errorf("%s %s after the rewrap: version %d (ok %v); want %d", kind, r.Row, cv, ok, v)
			}
		}
	}
	// The other tenant is untouched.
	for kind, rows := range sealedRows(t, e.st, "other") {
		for _, r := range rows {
			if cv, _ := seal.CiphertextVersion(r.Sealed); cv != otherV {
				t.Errorf("other tenant's %s moved to version %d", kind, cv)
			}
		}
	}

	kept := oldRows[store.SealedCalls][0]
	if _, err := k.Open(kept.Sealed, aad(kept.Kind, "bank", kept.AADID)); err != nil {
		t.Fatalf("a kept old ciphertext does not open before retirement: %v", err)
	}
	minV, err := e.n.RetireKeys(ctx, "bank")
	if err != nil {
		t.Fatal(err)
	}
	if minV != v {
		t.Errorf("retired below %d; want %d", minV, v)
	}
	k, _ = e.n.tenantKeys("bank")
	for kind, rows := range oldRows {
		for _, r := range rows {
			if _, err := k.Open(r.Sealed, aad(kind, "bank", r.AADID)); !errors.Is(err, seal.ErrRetiredKey) || !errors.Is(err, seal.ErrDecrypt) {
				t.Errorf("old %s ciphertext after retirement: %v; want ErrRetiredKey", kind, err)
			}
		}
	}
	// Everything stored still reads, here and after a restart.
	check := func(where string) {
		t.Helper()
		for _, c := range append(before, after...) {
			got, err := e.n.Call(ctx, "bank", c.ID)
			if err != nil {
				t.Fatalf("%s: record %s: %v", where, c.ID, err)
			}
			if got.Caller.E164 != c.Caller.E164 {
				t.Errorf("%s: record %s caller changed", where, c.ID)
			}
		}
	}
	check("after retirement")
	e.n.Close()
	e.st.Close()
	e.open(t)
	check("after a restart")
	if k, _ := e.n.tenantKeys("bank"); k.MinVersion() != v {
		t.Errorf("after a restart the minimum version is %d; want %d", k.MinVersion(), v)
	}
}

// knownForms returns the forms a number could be found in: E.164, digits
// only and national.
func knownForms(e164 string) []string {
	digits := strings.TrimPrefix(e164, "+")
	return []string{e164, digits, "0" + strings.TrimPrefix(digits, "44")}
}

// TestShredDefeatsBackup offboards a tenant and then opens a copy of the
// database taken before, with the same master key and keystore: the
// tenant's key set no longer opens (ErrShredded), so neither does its
// data, while another tenant's still does; and neither file holds a
// plaintext number.
func TestShredDefeatsBackup(t *testing.T) {
	clk := newPrivClock(time.Date(2025, 5, 1, 9, 0, 0, 0, time.UTC))
	e := openPrivEnv(t, clk)
	ctx := t.Context()
	for _, id := range []string{"bank", "other"} {
		if _, _, err := e.n.CreateTenant(ctx, id, "", "GB"); err != nil {
			t.Fatal(err)
		}
	}
	numbers := []string{"+447400123456", "+447400765432", "+447700900777"}
	fillSealed(t, e, "bank", numbers)
	fillSealed(t, e, "other", []string{"+447400555111"})

	// The backup: a consistent copy of the live database, WAL included.
	backup := filepath.Join(t.TempDir(), "backup.db")
	db, err := sql.Open("sqlite", e.path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", backup); err != nil {
		t.Fatal(err)
	}
	db.Close()

	counts, err := e.n.Offboard(ctx, "bank")
	if err != nil {
		t.Fatal(err)
	}
	if counts == (store.Counts{}) {
		t.Error("offboarding deleted nothing")
	}
	if _, err := e.n.Screen(ctx, Incoming{Tenant: "bank", Caller: numbers[0], Dialled: "+442079460123"}); call.ErrorCode(err) != call.NotFound {
		t.Errorf("screening for the offboarded tenant: %v; want NotFound", err)
	}
	e.n.Close()
	e.st.Close()

	bst, err := sqlite.Open(ctx, backup)
	if err != nil {
		t.Fatal(err)
	}
	defer bst.Close()
	ks, err := seal.OpenKeystore(e.ks.Dir(), e.mk)
	if err != nil {
		t.Fatal(err)
	}
	ring := seal.NewKeyringWithKeystore(e.mk, ks)
	open := func(tenant string) (*seal.TenantKeys, map[string][]store.SealedRow, error) {
		tn, err := bst.Tenant(ctx, tenant)
		if err != nil {
			t.Fatal(err)
		}
		if tn.Keys == nil {
			t.Fatalf("the backup holds no key set of %s", tenant)
		}
		rows := sealedRows(t, bst, tenant)
		k, err := ring.Open(tenant, tn.Keys)
		return k, rows, err
	}
	// The control: the other tenant's data opens from the backup.
	k, rows, err := open("other")
	if err != nil {
		t.Fatalf("the other tenant's keys do not open from the backup: %v", err)
	}
	for kind, rs := range rows {
		for _, r := range rs {
			if _, err := k.Open(r.Sealed, aad(kind, "other", r.AADID)); err != nil {
				t.Fatalf("the other tenant's %s does not open from the backup: %v", kind, err)
			}
		}
	}
	// The shredded tenant's does not, though the backup holds it.
	_, rows, err = open("bank")
	if !errors.Is(err, seal.ErrShredded) || !errors.Is(err, seal.ErrDecrypt) {
		t.Errorf("opening the shredded tenant's keys from the backup: %v; want ErrShredded", err)
	}
	if len(rows[store.SealedCalls]) != len(numbers) {
		t.Errorf("the backup holds %d of the shredded tenant's records; want %d", len(rows[store.SealedCalls]), len(numbers))
	}
	// A node on the backup refuses to start rather than serve it.
	if _, err := Open(ctx, Config{Follow: FollowConfig{Poll: -1}}, bst, ring); !errors.Is(err, seal.ErrShredded) {
		t.Errorf("a node on the backup: %v; want ErrShredded", err)
	}

	files := map[string]string{"backup": backup, "database after offboarding": e.path}
	for name, path := range files {
		for _, suffix := range []string{"", "-wal"} {
			b, err := readFileIfAny(path + suffix)
			if err != nil {
				t.Fatal(err)
			}
			for _, num := range numbers {
				for _, form := range knownForms(num) {
					if bytes.Contains(b, []byte(form)) {
						t.Errorf("%s%s holds %s in plaintext", name, suffix, form)
					}
				}
			}
		}
	}
}

// readFileIfAny reads a file; nil, no error, if it does not exist.
func readFileIfAny(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// TestKeyRetireKeepsFollowersCurrent retires keys on one node while
// another, following the same store, has not yet read the latest changes:
// the follower must still apply them (or reload), since RetireKeys purges
// the change log.
func TestKeyRetireKeepsFollowersCurrent(t *testing.T) {
	ctx := t.Context()
	clk := newPrivClock(time.Date(2025, 5, 1, 9, 0, 0, 0, time.UTC))
	e := openPrivEnv(t, clk)
	if _, _, err := e.n.CreateTenant(ctx, "bank", "", "GB"); err != nil {
		t.Fatal(err)
	}
	e.n.Close()
	e.st.Close()
	st, err := sqlite.Open(ctx, e.path)
	if err != nil {
		t.Fatal(err)
	}
	st.Now = clk.Now
	// B reads the feed when it starts, then not for an hour (unless the
	// test makes it catch up).
	b, err := Open(ctx, Config{Now: clk.Now, Follow: FollowConfig{Poll: time.Hour}}, st, seal.NewKeyringWithKeystore(e.mk, e.ks))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(); st.Close() })
	e.open(t)
	a := e.n
	eventually(t, "B's first read of the feed", 5*time.Second, func() bool {
		last, err := st.LastChange(ctx)
		return err == nil && b.follow.last.Load() == last
	})

	const denied = "+447400123456"
	if _, err := a.AddListEntry(ctx, "bank", call.DenyList, denied, "reported", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RotateKey(ctx, "bank"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Rewrap(ctx, "bank"); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Second)
	if _, err := a.RetireKeys(ctx, "bank"); err != nil {
		t.Fatal(err)
	}
	if err := b.follow.catchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.engine.Listed("bank", call.DenyList, b.engine.Number("bank", denied)); !ok {
		t.Error("the follower missed a deny entry made a second before the keys were retired")
	}
}

// TestRewrapPending is the background half of a rotation: after RotateKey
// alone, RewrapPending reseals the rotated tenant (only it), and a second
// pass has nothing to do.
func TestRewrapPending(t *testing.T) {
	clk := newPrivClock(time.Date(2025, 5, 1, 9, 0, 0, 0, time.UTC))
	e := openPrivEnv(t, clk)
	ctx := t.Context()
	for _, id := range []string{"bank", "other"} {
		if _, _, err := e.n.CreateTenant(ctx, id, "", "GB"); err != nil {
			t.Fatal(err)
		}
		fillSealed(t, e, id, []string{"+447400123456", "+447400123457"})
	}
	if got, err := e.n.RewrapPending(ctx); err != nil || len(got) != 0 {
		t.Fatalf("RewrapPending before any rotation: %v, %v; want nothing", got, err)
	}
	v, err := e.n.RotateKey(ctx, "bank")
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.n.RewrapPending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got["bank"]; !ok || len(got) != 1 {
		t.Fatalf("RewrapPending after rotating bank: %v; want bank alone", got)
	}
	for kind, rows := range sealedRows(t, e.st, "bank") {
		for _, r := range rows {
			if cv, _ := seal.CiphertextVersion(r.Sealed); cv != v {
				t.Errorf("%s %s still under key version %d after the background rewrap, want %d", kind, r.Row, cv, v)
			}
		}
	}
	if got, err := e.n.RewrapPending(ctx); err != nil || len(got) != 0 {
		t.Errorf("second RewrapPending: %v, %v; want nothing", got, err)
	}
}
