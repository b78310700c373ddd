package server

import (
	"context"
	"fmt"

	"github.com/xchat-im/xchat/server/store"
)

// copyBatch is how many records Copy hands the destination at once.
const copyBatch = 1000

// CopyStore copies every record of from into to, an empty store, in
// batches, calling progress with the number of records copied so far after
// each batch.
func CopyStore(ctx context.Context, from store.Exporter, to store.Importer, progress func(int)) (int, error) {
	batch := make([]store.Record, 0, copyBatch)
	n := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := to.Import(ctx, batch); err != nil {
			return fmt.Errorf("copy: after %d records: %w", n, err)
		}
		n += len(batch)
		batch = batch[:0]
		if progress != nil {
			progress(n)
		}
		return nil
	}
	err := from.Export(ctx, func(r store.Record) error {
		batch = append(batch, r)
		if len(batch) == copyBatch {
			return flush()
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	return n, flush()
}
