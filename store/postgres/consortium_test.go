package postgres

import (
	"testing"

	"github.com/ringfence/ringfence/store/postgres/pgtest"
	"github.com/ringfence/ringfence/store/storetest"
)

func TestConsortium(t *testing.T) {
	storetest.RunConsortium(t, func(t *testing.T) storetest.ConsortiumStore {
		return mustOpen(t, pgtest.NewDatabase(t))
	})
}
