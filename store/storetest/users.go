package storetest

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

// RunUsers runs the console users and sessions suite. Each subtest calls
// open for a fresh, empty store and closes it when done.
func RunUsers(t *testing.T, open func(t *testing.T) store.Store) {
	runSuite(t, open, []subtest{
		{"RoundTrip", testUsersRoundTrip},
		{"Invalid", testUsersInvalid},
		{"Update", testUsersUpdate},
		{"TenantIsolation", testUsersTenantIsolation},
		{"UnknownTenant", testUsersUnknownTenant},
		{"DeleteTenantData", testUsersDeleteTenantData},
		{"Sessions", testSessions},
		{"SessionsInvalid", testSessionsInvalid},
		{"TouchSession", testTouchSession},
		{"DeleteSessions", testDeleteSessions},
		{"PurgeSessions", testPurgeSessions},
		{"ConcurrentTouches", testConcurrentTouches},
	})
}

// newUser returns a user of tenant with id, created at at(i), a random
// password hash and every optional field zero.
func newUser(tenant, id string, role call.Role, i int) store.User {
	return store.User{
		Tenant:       tenant,
		ID:           id,
		Role:         role,
		PasswordHash: fmt.Appendf(nil, "$argon2id$v=19$m=65536,t=3,p=4$%x$%x", random(16), random(32)),
		CreatedAt:    at(i),
	}
}

// newSession returns a session of the user with a random token hash and
// CSRF secret, created and last seen at at(i), expiring at at(i+60).
func newSession(tenant, userID string, i int) store.Session {
	s := store.Session{Tenant: tenant, UserID: userID, CreatedAt: at(i), LastSeen: at(i), ExpiresAt: at(i + 60)}
	s.IDHash = sha256.Sum256(random(32))
	rand.Read(s.CSRFSecret[:])
	return s
}

// noChanges fails t if the change log grew past last.
func noChanges(t *testing.T, s store.Store, last int64, what string) {
	t.Helper()
	got, err := s.LastChange(t.Context())
	must(t, err)
	if got != last {
		t.Errorf("%s appended to the change log (last seq %d, was %d); want nothing", what, got, last)
	}
}

func testUsersRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	last, err := s.LastChange(ctx)
	must(t, err)

	full := newUser("acme", "zoe.admin", call.Admin, 3)
	full.DisabledAt, full.LockedUntil, full.FailedLogins = at(4), at(5), 7
	want := []store.User{
		newUser("acme", "a", call.Auditor, 1),
		newUser("acme", "bob_1-x", call.Analyst, 2),
		newUser("acme", strings.Repeat("p", store.MaxUserID), call.PrivacyOfficer, 3),
		newUser("acme", "t.compliance", call.ComplianceOfficer, 4),
		full,
	}
	for _, i := range []int{4, 2, 0, 3, 1} {
		must(t, s.PutUser(ctx, want[i]))
	}
	for _, u := range want {
		got, err := s.User(ctx, "acme", u.ID)
		must(t, err)
		equal(t, "User "+u.ID, got, u)
	}
	got, err := s.Users(ctx, "acme")
	must(t, err)
	equal(t, "Users", got, want)

	dup := newUser("acme", "bob_1-x", call.Admin, 9)
	wantCode(t, "PutUser of a stored id", s.PutUser(ctx, dup), call.Conflict)
	u, err := s.User(ctx, "acme", "bob_1-x")
	must(t, err)
	equal(t, "User after a conflicting PutUser", u, want[1])

	_, err = s.User(ctx, "acme", "nobody")
	wantCode(t, "User of an absent id", err, call.NotFound)
	noChanges(t, s, last, "user writes")
}

func testUsersInvalid(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	alice := newUser("acme", "alice", call.Analyst, 0)
	with := func(f func(u *store.User)) store.User {
		u := alice
		f(&u)
		return u
	}
	must(t, s.PutUser(ctx, alice))
	for _, tt := range []struct {
		name string
		u    store.User
	}{
		{"no tenant", with(func(u *store.User) { u.Tenant = "" })},
		{"empty id", with(func(u *store.User) { u.ID = "" })},
		{"id too long", with(func(u *store.User) { u.ID = strings.Repeat("a", store.MaxUserID+1) })},
		{"id upper case", with(func(u *store.User) { u.ID = "Alice" })},
		{"id with space", with(func(u *store.User) { u.ID = "al ice" })},
		{"id with at", with(func(u *store.User) { u.ID = "alice@acme" })},
		{"id with slash", with(func(u *store.User) { u.ID = "al/ice" })},
		{"id not ASCII", with(func(u *store.User) { u.ID = "alicé" })},
		{"no role", with(func(u *store.User) { u.Role = "" })},
		{"unknown role", with(func(u *store.User) { u.Role = "root" })},
		{"integration role", with(func(u *store.User) { u.Role = call.Integration })},
		{"role upper case", with(func(u *store.User) { u.Role = "ADMIN" })},
		{"nil password hash", with(func(u *store.User) { u.PasswordHash = nil })},
		{"empty password hash", with(func(u *store.User) { u.PasswordHash = []byte{} })},
		{"negative failed logins", with(func(u *store.User) { u.FailedLogins = -1 })},
	} {
		t.Run(tt.name, func(t *testing.T) {
			put := tt.u
			if put.ID == "alice" {
				put.ID = "bob" // not a Conflict with the stored alice
			}
			wantCode(t, "PutUser", s.PutUser(ctx, put), call.Invalid)
			wantCode(t, "UpdateUser", s.UpdateUser(ctx, tt.u), call.Invalid)
		})
	}
	got, err := s.Users(ctx, "acme")
	must(t, err)
	equal(t, "Users after invalid writes", got, []store.User{alice})
}

func testUsersUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	last, err := s.LastChange(ctx)
	must(t, err)
	alice, bob := newUser("acme", "alice", call.Analyst, 0), newUser("acme", "bob", call.Analyst, 1)
	must(t, s.PutUser(ctx, alice))
	must(t, s.PutUser(ctx, bob))

	changed := newUser("acme", "alice", call.Admin, 0)
	for _, step := range []struct {
		name string
		set  func(u *store.User)
	}{
		{"role and password", func(u *store.User) { u.Role, u.PasswordHash = changed.Role, changed.PasswordHash }},
		{"failed logins", func(u *store.User) { u.FailedLogins = 3 }},
		{"locked", func(u *store.User) { u.FailedLogins, u.LockedUntil = 5, at(20) }},
		{"unlocked", func(u *store.User) { u.FailedLogins, u.LockedUntil = 0, time.Time{} }},
		{"disabled", func(u *store.User) { u.DisabledAt = at(30) }},
		{"enabled", func(u *store.User) { u.DisabledAt = time.Time{} }},
	} {
		t.Run(step.name, func(t *testing.T) {
			step.set(&alice)
			u := alice
			u.CreatedAt = at(50) // ignored: CreatedAt is kept
			must(t, s.UpdateUser(ctx, u))
			got, err := s.User(ctx, "acme", "alice")
			must(t, err)
			equal(t, "User after UpdateUser", got, alice)
		})
	}
	got, err := s.User(ctx, "acme", "bob")
	must(t, err)
	equal(t, "the other user after updates", got, bob)

	wantCode(t, "UpdateUser of an absent user", s.UpdateUser(ctx, newUser("acme", "carol", call.Admin, 0)), call.NotFound)
	_, err = s.User(ctx, "acme", "carol")
	wantCode(t, "User after UpdateUser of an absent user", err, call.NotFound)
	noChanges(t, s, last, "user writes")
}

func testUsersTenantIsolation(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	tenant(t, s, "bank")
	a, b := newUser("acme", "alice", call.Admin, 0), newUser("bank", "alice", call.Auditor, 1)
	must(t, s.PutUser(ctx, a))
	must(t, s.PutUser(ctx, b)) // the same id in another tenant is no Conflict
	must(t, s.PutUser(ctx, newUser("bank", "bob", call.Analyst, 2)))

	got, err := s.User(ctx, "acme", "alice")
	must(t, err)
	equal(t, "acme's alice", got, a)
	_, err = s.User(ctx, "acme", "bob")
	wantCode(t, "User of another tenant's id", err, call.NotFound)
	wantCode(t, "UpdateUser of another tenant's id", s.UpdateUser(ctx, newUser("acme", "bob", call.Admin, 0)), call.NotFound)

	a.Role, a.FailedLogins = call.Analyst, 2
	must(t, s.UpdateUser(ctx, a))
	got, err = s.User(ctx, "bank", "alice")
	must(t, err)
	equal(t, "bank's alice after acme's update", got, b)
	list, err := s.Users(ctx, "acme")
	must(t, err)
	equal(t, "acme's Users", list, []store.User{a})

	// Sessions: a session names its user within its tenant.
	sa, sb := newSession("acme", "alice", 0), newSession("bank", "alice", 0)
	must(t, s.PutSession(ctx, sa))
	must(t, s.PutSession(ctx, sb))
	wantCode(t, "PutSession for another tenant's user", s.PutSession(ctx, newSession("acme", "bob", 0)), call.NotFound)
	n, err := s.DeleteUserSessions(ctx, "acme", "alice")
	must(t, err)
	if n != 1 {
		t.Errorf("DeleteUserSessions of acme's alice = %d; want 1", n)
	}
	got2, err := s.Session(ctx, sb.IDHash)
	must(t, err)
	equal(t, "bank's session after acme's DeleteUserSessions", got2, sb)
	// Disabling acme's alice leaves bank's alice's session alive.
	a.DisabledAt = at(5)
	must(t, s.UpdateUser(ctx, a))
	if _, err := s.TouchSession(ctx, sb.IDHash, at(1)); err != nil {
		t.Errorf("TouchSession of bank's alice after acme's alice was disabled: %v", err)
	}
}

func testUsersUnknownTenant(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	must(t, s.PutUser(ctx, newUser("acme", "alice", call.Admin, 0)))
	last, err := s.LastChange(ctx)
	must(t, err)

	wantCode(t, "PutUser of an unknown tenant", s.PutUser(ctx, newUser("nobody", "alice", call.Admin, 0)), call.NotFound)
	wantCode(t, "UpdateUser of an unknown tenant", s.UpdateUser(ctx, newUser("nobody", "alice", call.Admin, 0)), call.NotFound)
	wantCode(t, "PutSession of an unknown tenant", s.PutSession(ctx, newSession("nobody", "alice", 0)), call.NotFound)
	_, err = s.User(ctx, "nobody", "alice")
	wantCode(t, "User of an unknown tenant", err, call.NotFound)
	list, err := s.Users(ctx, "nobody")
	if err != nil || list == nil || len(list) != 0 {
		t.Errorf("Users of an unknown tenant = %v, %v; want empty, nil", list, err)
	}
	n, err := s.DeleteUserSessions(ctx, "nobody", "alice")
	if err != nil || n != 0 {
		t.Errorf("DeleteUserSessions of an unknown tenant = %d, %v; want 0, nil", n, err)
	}
	noChanges(t, s, last, "writes naming an unknown tenant")
}

func testUsersDeleteTenantData(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	tenant(t, s, "bank")
	sessions := map[string]store.Session{}
	for _, id := range []string{"acme", "bank"} {
		must(t, s.PutUser(ctx, newUser(id, "alice", call.Admin, 0)))
		sessions[id] = newSession(id, "alice", 0)
		must(t, s.PutSession(ctx, sessions[id]))
	}
	_, err := s.DeleteTenantData(ctx, "acme")
	must(t, err)

	list, err := s.Users(ctx, "acme")
	if err != nil || len(list) != 0 {
		t.Errorf("acme's Users after DeleteTenantData = %v, %v; want none", list, err)
	}
	_, err = s.Session(ctx, sessions["acme"].IDHash)
	wantCode(t, "Session after DeleteTenantData", err, call.NotFound)
	wantCode(t, "PutUser of an offboarded tenant", s.PutUser(ctx, newUser("acme", "alice", call.Admin, 1)), call.NotFound)
	_, err = s.User(ctx, "acme", "alice")
	wantCode(t, "User after PutUser of an offboarded tenant", err, call.NotFound)

	got, err := s.TouchSession(ctx, sessions["bank"].IDHash, at(1))
	must(t, err)
	if got.Tenant != "bank" || got.UserID != "alice" {
		t.Errorf("bank's session after acme's deletion = %+v", got)
	}
	list, err = s.Users(ctx, "bank")
	if err != nil || len(list) != 1 {
		t.Errorf("bank's Users after acme's deletion = %v, %v; want alice", list, err)
	}
}

func testSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	last, err := s.LastChange(ctx)
	must(t, err)
	must(t, s.PutUser(ctx, newUser("acme", "alice", call.Admin, 0)))
	off := newUser("acme", "off", call.Admin, 0)
	off.DisabledAt = at(1)
	must(t, s.PutUser(ctx, off))
	// A locked user may hold a session: locking stops logins, not sessions.
	locked := newUser("acme", "locked", call.Admin, 0)
	locked.LockedUntil, locked.FailedLogins = at(90), 5
	must(t, s.PutUser(ctx, locked))

	full := newSession("acme", "alice", 2)
	bare := newSession("acme", "alice", 3)
	bare.CreatedAt, bare.LastSeen = time.Time{}, time.Time{}
	for _, want := range []store.Session{full, bare, newSession("acme", "locked", 4)} {
		must(t, s.PutSession(ctx, want))
		got, err := s.Session(ctx, want.IDHash)
		must(t, err)
		equal(t, "Session", got, want)
	}

	dup := newSession("acme", "alice", 9)
	dup.IDHash = full.IDHash
	wantCode(t, "PutSession of a stored hash", s.PutSession(ctx, dup), call.Conflict)
	got, err := s.Session(ctx, full.IDHash)
	must(t, err)
	equal(t, "Session after a conflicting PutSession", got, full)

	for _, tt := range []struct {
		name string
		s    store.Session
	}{
		{"absent user", newSession("acme", "bob", 0)},
		{"disabled user", newSession("acme", "off", 0)},
	} {
		wantCode(t, "PutSession of an "+tt.name, s.PutSession(ctx, tt.s), call.NotFound)
		_, err := s.Session(ctx, tt.s.IDHash)
		wantCode(t, "Session after PutSession of an "+tt.name, err, call.NotFound)
	}
	_, err = s.Session(ctx, sha256.Sum256([]byte("not a token")))
	wantCode(t, "Session of an unknown hash", err, call.NotFound)

	// Session returns an expired session too: the caller checks ExpiresAt.
	old := newSession("acme", "alice", -120)
	must(t, s.PutSession(ctx, old))
	got, err = s.Session(ctx, old.IDHash)
	must(t, err)
	equal(t, "Session of an expired session", got, old)
	noChanges(t, s, last, "session writes")
}

func testSessionsInvalid(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	must(t, s.PutUser(ctx, newUser("acme", "alice", call.Admin, 0)))
	with := func(f func(s *store.Session)) store.Session {
		s := newSession("acme", "alice", 0)
		f(&s)
		return s
	}
	for _, tt := range []struct {
		name string
		s    store.Session
	}{
		{"no tenant", with(func(s *store.Session) { s.Tenant = "" })},
		{"no user", with(func(s *store.Session) { s.UserID = "" })},
		{"bad user id", with(func(s *store.Session) { s.UserID = "Alice" })},
		{"zero hash", with(func(s *store.Session) { s.IDHash = [32]byte{} })},
		{"no expiry", with(func(s *store.Session) { s.ExpiresAt = time.Time{} })},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, "PutSession", s.PutSession(ctx, tt.s), call.Invalid)
			_, err := s.Session(ctx, tt.s.IDHash)
			wantCode(t, "Session after an invalid PutSession", err, call.NotFound)
		})
	}
	ok := newSession("acme", "alice", 0)
	must(t, s.PutSession(ctx, ok))
	_, err := s.TouchSession(ctx, ok.IDHash, time.Time{})
	wantCode(t, "TouchSession at the zero time", err, call.Invalid)
}

func testTouchSession(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	alice := newUser("acme", "alice", call.Admin, 0)
	must(t, s.PutUser(ctx, alice))
	sess := newSession("acme", "alice", 0) // expires at at(60)
	must(t, s.PutSession(ctx, sess))
	never := newSession("acme", "alice", 0)
	never.LastSeen = time.Time{}
	must(t, s.PutSession(ctx, never))
	last, err := s.LastChange(ctx)
	must(t, err)

	for _, step := range []struct {
		name     string
		hash     [32]byte
		at       int
		code     string
		lastSeen int // want LastSeen = at(lastSeen) after the step
	}{
		{"forward", sess.IDHash, 10, "", 10},
		{"same time", sess.IDHash, 10, "", 10},
		{"backward keeps the later time", sess.IDHash, 5, "", 10},
		{"just before expiry", sess.IDHash, 59, "", 59},
		{"at expiry", sess.IDHash, 60, call.NotFound, 59},
		{"after expiry", sess.IDHash, 61, call.NotFound, 59},
		{"earlier again, still live", sess.IDHash, 30, "", 59},
	} {
		t.Run(step.name, func(t *testing.T) {
			got, err := s.TouchSession(ctx, step.hash, at(step.at))
			wantCode(t, "TouchSession", err, step.code)
			want := sess
			want.LastSeen = at(step.lastSeen)
			if err == nil {
				equal(t, "TouchSession's session", got, want)
			}
			stored, err := s.Session(ctx, step.hash)
			must(t, err)
			equal(t, "Session after TouchSession", stored, want)
		})
	}

	got, err := s.TouchSession(ctx, never.IDHash, at(3))
	must(t, err)
	if !got.LastSeen.Equal(at(3)) {
		t.Errorf("TouchSession of a session never seen: LastSeen %v; want %v", got.LastSeen, at(3))
	}
	_, err = s.TouchSession(ctx, sha256.Sum256([]byte("not a token")), at(1))
	wantCode(t, "TouchSession of an unknown hash", err, call.NotFound)

	// A disabled user's sessions are dead even before DeleteUserSessions.
	alice.DisabledAt = at(40)
	must(t, s.UpdateUser(ctx, alice))
	_, err = s.TouchSession(ctx, never.IDHash, at(41))
	wantCode(t, "TouchSession of a disabled user's session", err, call.NotFound)
	alice.DisabledAt = time.Time{}
	must(t, s.UpdateUser(ctx, alice))
	_, err = s.TouchSession(ctx, never.IDHash, at(42))
	must(t, err)
	noChanges(t, s, last, "TouchSession")
}

func testDeleteSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	for _, id := range []string{"alice", "bob"} {
		must(t, s.PutUser(ctx, newUser("acme", id, call.Analyst, 0)))
	}
	var alices []store.Session
	for i := range 3 {
		alices = append(alices, newSession("acme", "alice", i))
		must(t, s.PutSession(ctx, alices[i]))
	}
	bobs := newSession("acme", "bob", 0)
	must(t, s.PutSession(ctx, bobs))

	must(t, s.DeleteSession(ctx, alices[0].IDHash))
	_, err := s.Session(ctx, alices[0].IDHash)
	wantCode(t, "Session after DeleteSession", err, call.NotFound)
	wantCode(t, "DeleteSession again", s.DeleteSession(ctx, alices[0].IDHash), call.NotFound)

	n, err := s.DeleteUserSessions(ctx, "acme", "alice")
	must(t, err)
	if n != 2 {
		t.Errorf("DeleteUserSessions = %d; want 2", n)
	}
	for _, sess := range alices {
		_, err := s.Session(ctx, sess.IDHash)
		wantCode(t, "Session after DeleteUserSessions", err, call.NotFound)
	}
	n, err = s.DeleteUserSessions(ctx, "acme", "alice")
	if err != nil || n != 0 {
		t.Errorf("DeleteUserSessions again = %d, %v; want 0, nil", n, err)
	}
	got, err := s.Session(ctx, bobs.IDHash)
	must(t, err)
	equal(t, "the other user's session", got, bobs)
}

func testPurgeSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	tenant(t, s, "bank")
	must(t, s.PutUser(ctx, newUser("acme", "alice", call.Admin, 0)))
	must(t, s.PutUser(ctx, newUser("bank", "bob", call.Admin, 0)))
	// Sessions expiring at at(60), at(70), at(80) and at(90).
	ss := []store.Session{
		newSession("acme", "alice", 0), newSession("bank", "bob", 10),
		newSession("acme", "alice", 20), newSession("bank", "bob", 30),
	}
	for _, sess := range ss {
		must(t, s.PutSession(ctx, sess))
	}
	for _, step := range []struct {
		before int
		want   int64
		left   int // sessions ss[left:] are stored afterwards
	}{
		{59, 0, 0},
		{70, 2, 2}, // ExpiresAt equal to before is expired
		{70, 0, 2},
		{89, 1, 3},
	} {
		n, err := s.PurgeSessions(ctx, at(step.before))
		must(t, err)
		if n != step.want {
			t.Errorf("PurgeSessions(at(%d)) = %d; want %d", step.before, n, step.want)
		}
		for i, sess := range ss {
			_, err := s.Session(ctx, sess.IDHash)
			if want := i >= step.left; (err == nil) != want {
				t.Errorf("after PurgeSessions(at(%d)): session %d stored %v (err %v); want %v", step.before, i, err == nil, err, want)
			}
		}
	}
	n, err := s.PurgeSessions(ctx, time.Time{})
	if err != nil || n != 0 {
		t.Errorf("PurgeSessions(zero time) = %d, %v; want 0, nil", n, err)
	}
}

// testConcurrentTouches touches one session from several goroutines at
// once: every touch succeeds and LastSeen ends at the latest time given.
func testConcurrentTouches(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	must(t, s.PutUser(ctx, newUser("acme", "alice", call.Admin, 0)))
	sess := newSession("acme", "alice", 0)
	must(t, s.PutSession(ctx, sess))
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.TouchSession(ctx, sess.IDHash, at(1+(i*5)%n))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("touch %d: %v", i, err)
		}
	}
	got, err := s.Session(ctx, sess.IDHash)
	must(t, err)
	if !got.LastSeen.Equal(at(n)) {
		t.Errorf("LastSeen after concurrent touches = %v; want %v", got.LastSeen, at(n))
	}
}
