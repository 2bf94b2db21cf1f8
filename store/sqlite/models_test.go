package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/storetest"
)

func TestModels(t *testing.T) {
	storetest.RunModels(t, func(t *testing.T) store.Store {
		return mustOpen(t, filepath.Join(t.TempDir(), "ringfence.db"))
	})
}
