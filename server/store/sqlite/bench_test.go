package sqlite_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/server/store/storetest"
)

// The benchmarks are storetest's. The store's Stats (export_test.go) makes
// the enqueue benchmarks also report ops/tx.

// benchOpen opens a store with boxes accounts and returns their mailboxes.
func benchOpen(b *testing.B, boxes int) (store.Store, []store.Mailbox) {
	b.Helper()
	s := open(b, filepath.Join(b.TempDir(), "store.db"), storetest.BenchLimits)
	mbs := make([]store.Mailbox, boxes)
	for i := range mbs {
		mbs[i] = account(b, s, fmt.Sprintf("user%d@example.org", i))
	}
	return s, mbs
}

func BenchmarkEnqueueSerial(b *testing.B)   { storetest.BenchmarkEnqueueSerial(b, benchOpen) }
func BenchmarkEnqueueParallel(b *testing.B) { storetest.BenchmarkEnqueueParallel(b, benchOpen) }
func BenchmarkEnqueueBatch100(b *testing.B) { storetest.BenchmarkEnqueueBatch100(b, benchOpen) }
func BenchmarkPendingAck(b *testing.B)      { storetest.BenchmarkPendingAck(b, benchOpen) }
func BenchmarkEnqueueOutboundBatch100(b *testing.B) {
	storetest.BenchmarkEnqueueOutboundBatch100(b, benchOpen)
}
func BenchmarkClaimDelete100(b *testing.B)  { storetest.BenchmarkClaimDelete100(b, benchOpen) }
func BenchmarkPutPart(b *testing.B)         { storetest.BenchmarkPutPart(b, benchOpen) }
func BenchmarkPutPartParallel(b *testing.B) { storetest.BenchmarkPutPartParallel(b, benchOpen) }
func BenchmarkReadBlob(b *testing.B)        { storetest.BenchmarkReadBlob(b, benchOpen) }
