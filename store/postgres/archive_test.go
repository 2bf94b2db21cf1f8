package postgres

import (
	"testing"

	"github.com/ringfence/ringfence/store/postgres/pgtest"
	"github.com/ringfence/ringfence/store/storetest"
)

func TestArchive(t *testing.T) {
	storetest.RunArchive(t, func(t *testing.T) storetest.ArchiveStore {
		return mustOpen(t, pgtest.NewDatabase(t))
	})
}
