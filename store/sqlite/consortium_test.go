package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/storetest"
)

func TestConsortium(t *testing.T) {
	storetest.RunConsortium(t, func(t *testing.T) store.Store {
		return mustOpen(t, filepath.Join(t.TempDir(), "ringfence.db"))
	})
}
