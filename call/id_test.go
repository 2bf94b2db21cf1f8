package call

import (
	"testing"
	"time"
)

func TestIDsSortInIssueOrder(t *testing.T) {
	var g IDs
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	times := []time.Time{t0, t0, t0, t0.Add(time.Millisecond), t0.Add(-time.Hour), t0.Add(2 * time.Millisecond)}
	prev := ""
	for i, at := range times {
		id := g.Next(at)
		if !ValidRecordID(id) {
			t.Fatalf("id %q is not valid", id)
		}
		if id <= prev {
			t.Fatalf("id %d %q does not sort after %q", i, id, prev)
		}
		prev = id
	}
}

func TestValidRecordID(t *testing.T) {
	for s, want := range map[string]bool{
		"01ARZ3NDEKTSV4RRFFQ69G5FAV": true,
		"01ARZ3NDEKTSV4RRFFQ69G5FA":  false,
		"81ARZ3NDEKTSV4RRFFQ69G5FAV": false,
		"01ARZ3NDEKTSV4RRFFQ69G5FAI": false,
		"01arz3ndektsv4rrffq69g5fav": false,
	} {
		if got := ValidRecordID(s); got != want {
			t.Errorf("ValidRecordID(%q) = %v", s, got)
		}
	}
}
