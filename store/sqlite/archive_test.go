package sqlite

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"testing"
	"time"

	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/storetest"
)

func TestArchive(t *testing.T) {
	storetest.RunArchive(t, func(t *testing.T) store.Store {
		return mustOpen(t, filepath.Join(t.TempDir(), "ringfence.db"))
	})
}

// TestArchiveSealedOnly checks that the store writes what it is given in a
// sealed column nowhere else: each marker handed over sealed is in the
// files exactly once after a checkpoint (a pseudonym or token twice: its
// row and its lookup index), and not at all once its row is purged or
// deleted.
func TestArchiveSealedOnly(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "ringfence.db")
	db := mustOpen(t, path)
	defer db.Close()
	if err := db.CreateTenant(ctx, store.Tenant{ID: "acme", Name: "Acme", Region: "GB"}); err != nil {
		t.Fatal(err)
	}
	marker := func(what string) []byte { return []byte("MARKER-7d2e-" + what + "-MARKER") }
	now := time.Unix(1700000000, 0).UTC()
	sum := sha256.Sum256(nil)
	item := func(id, client string, sealed, party, token []byte) store.ArchiveItem {
		return store.ArchiveItem{Tenant: "acme", ID: id, ClientID: client, Kind: store.ArchiveSMS, UserID: "u1",
			Direction: store.ArchiveInbound, StartedAt: now, Parties: [][]byte{party}, Tokens: [][]byte{token},
			Sealed: sealed, SHA256: hex.EncodeToString(sum[:]), ChainDay: "2023-11-14"}
	}
	gone := item(recordIDs.Next(now), "c1", append(random(40), marker("item")...), marker("party"), marker("token"))
	kept := item(recordIDs.Next(now), "c2", append(random(40), marker("kept")...), random(32), random(16))
	kept.StartedAt = now.Add(time.Minute)
	for _, it := range []store.ArchiveItem{gone, kept} {
		if _, _, err := db.PutArchiveItem(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	// A retry carrying other sealed bytes stores none of them.
	retry := item(recordIDs.Next(now), "c1", marker("retry"), random(32), random(16))
	if _, created, err := db.PutArchiveItem(ctx, retry); err != nil || created {
		t.Fatalf("PutArchiveItem retry: created %v, %v", created, err)
	}
	if err := db.PutArchiveUser(ctx, store.ArchiveUser{Tenant: "acme", ID: "u1", Sealed: marker("user"),
		Numbers: [][]byte{marker("number")}}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutArchiveContacts(ctx, "acme", "u1", []store.ArchiveContact{{ID: "k1", Sealed: marker("contact")}}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutArchiveUpload(ctx, store.ArchiveUpload{Tenant: "acme", ID: "up1", ClientID: "c9",
		State: marker("upload"), UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	checkpoint(t, db)
	for _, what := range []string{"item", "kept", "user", "contact", "upload"} {
		if n := occurrences(t, path, marker(what)); n != 1 {
			t.Errorf("sealed %s marker found %d times after a checkpoint; want exactly 1", what, n)
		}
	}
	// A pseudonym or token is a lookup key: its row and its index entry.
	for _, what := range []string{"party", "token", "number"} {
		if n := occurrences(t, path, marker(what)); n != 2 {
			t.Errorf("%s marker found %d times after a checkpoint; want 2 (row and lookup index)", what, n)
		}
	}
	if n := occurrences(t, path, marker("retry")); n != 0 {
		t.Errorf("a retry's sealed value found %d times; want 0", n)
	}

	// Purge the first item (once its hold is lifted; the second is too
	// young), clear the contacts, delete the upload and replace the user's
	// numbers.
	hold := store.ArchiveHold{Tenant: "acme", ID: "h", Scope: store.ArchiveHoldRange, From: now, To: now.Add(time.Second)}
	if err := db.PutArchiveHold(ctx, hold); err != nil {
		t.Fatal(err)
	}
	if p, err := db.PurgeArchive(ctx, "acme", store.ArchivePurge{Kind: store.ArchiveSMS, Before: now.Add(time.Second)}); err != nil || p.Items != 0 {
		t.Fatalf("PurgeArchive under a hold = %+v, %v; want nothing deleted", p, err)
	}
	if err := db.LiftArchiveHold(ctx, "acme", "h", "officer", now); err != nil {
		t.Fatal(err)
	}
	if p, err := db.PurgeArchive(ctx, "acme", store.ArchivePurge{Kind: store.ArchiveSMS, Before: now.Add(time.Second)}); err != nil || p.Items != 1 {
		t.Fatalf("PurgeArchive = %+v, %v; want 1 deleted", p, err)
	}
	if err := db.PutArchiveContacts(ctx, "acme", "u1", nil); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteArchiveUpload(ctx, "acme", "up1"); err != nil {
		t.Fatal(err)
	}
	if err := db.PutArchiveUser(ctx, store.ArchiveUser{Tenant: "acme", ID: "u1", Sealed: marker("user")}); err != nil {
		t.Fatal(err)
	}
	checkpoint(t, db)
	for _, what := range []string{"item", "party", "token", "contact", "upload", "number"} {
		if n := occurrences(t, path, marker(what)); n != 0 {
			t.Errorf("%s marker found %d times after its deletion and a checkpoint; want 0", what, n)
		}
	}
	for _, what := range []string{"kept", "user"} {
		if n := occurrences(t, path, marker(what)); n != 1 {
			t.Errorf("%s marker found %d times; want the kept row's 1", what, n)
		}
	}
	if got, err := db.ArchiveItem(ctx, "acme", kept.ID); err != nil || !bytes.Equal(got.Sealed, kept.Sealed) {
		t.Errorf("ArchiveItem of the kept item: %v", err)
	}
}
