package app

import (
	"github.com/fieldsync/fieldsync/adapters/rxdb"
	"github.com/fieldsync/fieldsync/adapters/watermelondb"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// newAdapters builds the WatermelonDB and RxDB adapters over eng for the
// schemas document; RxDB's pull stream reads the store's feed head when the
// store has one (both stores do).
func newAdapters(eng *engine.Engine, schemasDoc []byte, store engine.Store) (*watermelondb.Adapter, *rxdb.Adapter, error) {
	wm, err := watermelondb.New(eng, schemasDoc)
	if err != nil {
		return nil, nil, err
	}
	var st rxdb.StreamConfig
	if feed, ok := store.(rxdb.Feed); ok {
		st = rxdb.StreamConfig{Feed: feed}
	}
	rx, err := rxdb.New(eng, schemasDoc, st)
	if err != nil {
		return nil, nil, err
	}
	return wm, rx, nil
}
