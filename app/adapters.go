package app

import (
	"github.com/fieldsync/fieldsync/adapters/rxdb"
	"github.com/fieldsync/fieldsync/adapters/watermelondb"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// newAdapters builds the WatermelonDB and RxDB adapters over eng for the
// schemas document. RxDB's pull stream is served with the live stream's hub
// (server.StreamConfig), and only when there is one.
func newAdapters(eng *engine.Engine, schemasDoc []byte) (*watermelondb.Adapter, *rxdb.Adapter, error) {
	wm, err := watermelondb.New(eng, schemasDoc)
	if err != nil {
		return nil, nil, err
	}
	rx, err := rxdb.New(eng, schemasDoc)
	if err != nil {
		return nil, nil, err
	}
	return wm, rx, nil
}
