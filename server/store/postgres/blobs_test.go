package postgres_test

import (
	"testing"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/server/store/storetest"
)

func TestBlobsReopen(t *testing.T) {
	t.Parallel()
	storetest.RunBlobsReopen(t, func(t *testing.T, limits store.Limits) (store.Store, func(*testing.T) store.Store) {
		u := newSchema(t, true)
		return open(t, u, limits), func(t *testing.T) store.Store { return open(t, u, limits) }
	})
}
