package server_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

// heapInUse returns the bytes of live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// Frames announced at 1 MiB and never finished, on every stream of two
// connections of one account, hold at most the frame budgets of the
// connection and the account (spec/15-limits.md), not 100 MiB a
// connection; the streams are reset at the request deadline of section 3.6.
//
// Not parallel: it measures the process's heap, which other tests would
// disturb.
func TestUnfinishedFramesAreBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the request deadline")
	}
	s := servertest.Start(t, servertest.Options{})
	d := servertest.NewDevice(t, "frames@a.test")
	reg := servertest.Dial(t, s)
	if err := reg.Register(d, nil); err != nil {
		t.Fatal(err)
	}
	const conns = 2
	raws := make([]*servertest.Raw, conns)
	for i := range raws {
		// With the client keep-alive of spec 2.5, so that the connection
		// outlives the request deadline it waits for.
		qc, err := quic.DialAddr(servertest.Context(t), s.Addr, servertest.TLSConfig(t, s, wire.ALPN), &quic.Config{KeepAlivePeriod: wire.KeepAlive})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { qc.CloseWithError(0, "") })
		raws[i] = &servertest.Raw{T: t, QC: qc}
		if err := raws[i].Authenticate(d); err != nil {
			t.Fatal(err)
		}
	}
	// One shared buffer: the test's own memory does not grow with the
	// streams. Every frame lacks its last byte and the stream its FIN.
	frame := wire.AppendVarint(nil, wire.MaxFrame)
	frame = append(frame, make([]byte, wire.MaxFrame-1)...)

	before := heapInUse()
	ctx, cancel := context.WithTimeout(context.Background(), wire.RequestDeadline+15*time.Second)
	defer cancel()
	var reset atomic.Int64
	var wg sync.WaitGroup
	opened := time.Now()
	for _, r := range raws {
		for range wire.MaxConcurrentStreams {
			st, err := r.QC.OpenStreamSync(ctx)
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := st.Write(frame)
				var se *quic.StreamError
				if err == nil {
					// Everything was taken: wait for the server's
					// STOP_SENDING at the deadline.
					_, err = st.Read(make([]byte, 1))
				}
				if errors.As(err, &se) && se.Remote {
					reset.Add(1)
				}
				st.CancelWrite(0)
				st.CancelRead(0)
			}()
		}
	}
	// The server reads what it accepts to take as fast as loopback
	// carries it: a second is ample for it to buffer every stream it
	// would buffer. Sample the heap meanwhile and keep the peak.
	var peak uint64
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		peak = max(peak, heapInUse())
		time.Sleep(100 * time.Millisecond)
	}
	grown := int64(peak) - int64(before)
	t.Logf("heap in use: %d MiB before, peak %d MiB with %d unfinished 1 MiB frames", before>>20, peak>>20, conns*wire.MaxConcurrentStreams)
	// The budgets allow 16 MiB for the account, plus what QUIC flow
	// control lets each connection buffer unread; 200 MiB is what
	// buffering every frame takes.
	const bound = 80 << 20
	if grown > bound {
		t.Errorf("heap grew by %d MiB for unfinished frames, bound %d MiB", grown>>20, bound>>20)
	}
	wg.Wait()
	if n := reset.Load(); n != conns*wire.MaxConcurrentStreams {
		t.Errorf("%d of %d unfinished streams were reset by the server", n, conns*wire.MaxConcurrentStreams)
	}
	if took := time.Since(opened); took > wire.RequestDeadline+5*time.Second {
		t.Errorf("streams reset after %v, deadline %v", took, wire.RequestDeadline)
	}
	// The connections still serve requests.
	for _, r := range raws {
		var info wire.ServerInfoOK
		if err := r.Request(&wire.ServerInfo{}, &info); err != nil {
			t.Fatalf("server-info after the deadline: %v", err)
		}
	}
}
