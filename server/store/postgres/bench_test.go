package postgres_test

import (
	"fmt"
	"testing"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/server/store/storetest"
)

// The benchmarks are storetest's. Their pools have the size the URL asks
// for (pool_max_conns), else 4. Without TEST_DATABASE_URL they skip.

// benchOpen opens a store in a new schema with boxes accounts and returns
// their mailboxes.
func benchOpen(b *testing.B, boxes int) (store.Store, []store.Mailbox) {
	b.Helper()
	s := open(b, newSchema(b, true), storetest.BenchLimits)
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
