package postgres

import (
	"testing"

	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/postgres/pgtest"
	"github.com/ringfence/ringfence/store/storetest"
)

// TestModels runs the model suite on PostgreSQL, where ConcurrentPromotions
// and ConcurrentPuts race two transactions through separate connections.
func TestModels(t *testing.T) {
	storetest.RunModels(t, func(t *testing.T) store.Store {
		return mustOpen(t, pgtest.NewDatabase(t))
	})
}
