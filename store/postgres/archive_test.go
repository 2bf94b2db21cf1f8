package postgres

import (
	"testing"

	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/postgres/pgtest"
	"github.com/ringfence/ringfence/store/storetest"
)

func TestArchive(t *testing.T) {
	storetest.RunArchive(t, func(t *testing.T) store.Store {
		return mustOpen(t, pgtest.NewDatabase(t))
	})
}
