package storetest

import (
	"crypto/rand"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server/store"
)

// benchBlobParts is the number of parts of the blobs the blob benchmarks
// write (16 MiB); they start a new blob when one is full.
const benchBlobParts = 32

// benchBlob creates a blob of benchBlobParts parts with a random ID.
func benchBlob(b *testing.B, s store.Store, t0 time.Time) store.Blob {
	b.Helper()
	bl := store.Blob{Owner: "bench@example.org", Size: benchBlobParts * part, CreatedAt: t0, Expires: t0.Add(time.Hour)}
	rand.Read(bl.ID[:])
	if err := s.CreateBlob(b.Context(), bl, store.BlobLimits{}); err != nil {
		b.Fatal(err)
	}
	return bl
}

// BenchmarkPutPart writes parts of 512 KiB one after the other, in order.
func BenchmarkPutPart(b *testing.B, open BenchOpener) {
	s, _ := open(b, 0)
	t0 := time.Now()
	data := blobData(1, part)
	b.SetBytes(part)
	var bl store.Blob
	i := int64(0)
	for b.Loop() {
		if i%benchBlobParts == 0 {
			bl = benchBlob(b, s, t0)
		}
		if _, err := s.PutPart(b.Context(), bl.Owner, bl.ID, i%benchBlobParts, data, t0); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkPutPartParallel writes parts of 512 KiB from GOMAXPROCS
// goroutines, each into blobs of its own.
func BenchmarkPutPartParallel(b *testing.B, open BenchOpener) {
	s, _ := open(b, 0)
	t0 := time.Now()
	data := blobData(1, part)
	b.SetBytes(part)
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var bl store.Blob
		i := int64(0)
		for pb.Next() {
			if i%benchBlobParts == 0 {
				bl = benchBlob(b, s, t0)
			}
			if _, err := s.PutPart(b.Context(), bl.Owner, bl.ID, i%benchBlobParts, data, t0); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkReadBlob reads a complete blob in ranges of 512 KiB that start
// inside a part (so that each overlaps two), as blob-get does.
func BenchmarkReadBlob(b *testing.B, open BenchOpener) {
	s, _ := open(b, 0)
	t0 := time.Now()
	bl := benchBlob(b, s, t0)
	data := blobData(1, bl.Size)
	for i := range int64(benchBlobParts) {
		if _, err := s.PutPart(b.Context(), bl.Owner, bl.ID, i, partOf(data, i), t0); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := s.FinishBlob(b.Context(), bl.Owner, bl.ID, t0, t0.Add(time.Hour)); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(part)
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		p := make([]byte, part)
		for pb.Next() {
			off := (next.Add(1)*part + 1000) % (bl.Size - part)
			if _, _, err := s.ReadBlob(b.Context(), bl.ID, off, p, t0); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
