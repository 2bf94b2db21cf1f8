package postgres

import (
	"testing"

	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/postgres/pgtest"
	"github.com/ringfence/ringfence/store/storetest"
)

// TestUsers runs the users and sessions suite on PostgreSQL, where
// ConcurrentTouches races transactions through separate connections.
func TestUsers(t *testing.T) {
	storetest.RunUsers(t, func(t *testing.T) store.Store {
		return mustOpen(t, pgtest.NewDatabase(t))
	})
}
