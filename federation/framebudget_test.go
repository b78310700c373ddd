package federation_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// A peer that announces 1 MiB frames on every stream of its connection and
// never finishes them holds at most the connection's frame budget (16 MiB,
// spec/15-limits.md) and what QUIC flow control lets it send unread, not
// 100 MiB.
//
// Not parallel: it measures the process's heap, which other tests would
// disturb.
func TestPeerUnfinishedFramesAreBounded(t *testing.T) {
	fed := servertest.StartFederation(t, servertest.Options{}, "a.test", "b.test")
	b := fed["b.test"]
	r := servertest.DialFed(t, b, b.CADir(), "a.test")
	if err := hello(r, "a.test"); err != nil {
		t.Fatal(err)
	}
	frame := wire.AppendVarint(nil, wire.MaxFrame)
	frame = append(frame, make([]byte, wire.MaxFrame-1)...)
	before := heapInUse()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range wire.MaxConcurrentStreams - 1 {
		st, err := r.QC.OpenStreamSync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		go st.Write(frame) // ends when the connection closes
	}
	var peak uint64
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		peak = max(peak, heapInUse())
		time.Sleep(100 * time.Millisecond)
	}
	grown := int64(peak) - int64(before)
	t.Logf("heap in use: %d MiB before, peak %d MiB with %d unfinished 1 MiB frames", before>>20, peak>>20, wire.MaxConcurrentStreams-1)
	const bound = 48 << 20
	if grown > bound {
		t.Errorf("heap grew by %d MiB for one peer connection's unfinished frames, bound %d MiB", grown>>20, bound>>20)
	}
	r.QC.CloseWithError(0, "")
}
