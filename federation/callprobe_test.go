package federation_test

import (
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xchat-im/xchat/federation"
	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

// TestFedCallProbe measures where packets between two federated domains
// are lost at a given rate: XCHAT_CALL_PROBE=packets/s (e.g. 25000) runs
// it; it is skipped otherwise. It offers packets of 174 bytes from
// several goroutines (as the relay's member readers do) for 3 s each way
// at once, and prints each stage's counts.
func TestFedCallProbe(t *testing.T) {
	rate, _ := strconv.Atoi(os.Getenv("XCHAT_CALL_PROBE"))
	if rate <= 0 {
		t.Skip("XCHAT_CALL_PROBE=packets/s runs the probe")
	}
	nodes := startCallNodes(t, nil, "a.test", "b.test")
	a, b := nodes["a.test"], nodes["b.test"]
	a.local.discard.Store(true)
	b.local.discard.Store(true)
	ctx := servertest.Context(t)
	h, err := a.f.CallJoin(ctx, "b.test", randomBytes(wire.RoomIDLen, 1), randomBytes(wire.RoomTokenLen, 2), 0xA1)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "connections", func() bool {
		return a.f.SendPacket("b.test", packet(h, 0, 174)) && b.f.SendPacket("a.test", packet(0xA1, 0, 174))
	})
	time.Sleep(500 * time.Millisecond)
	a0, b0 := a.f.CallStats(), b.f.CallStats()
	sa0, _ := federation.OutboundStats(a.f, "b.test")
	const senders, dur = 8, 3 * time.Second
	var offered atomic.Uint64
	var wg sync.WaitGroup
	start := time.Now()
	for i := range senders {
		for _, dir := range []struct {
			f      *federation.Federation
			to     string
			handle uint32
		}{{a.f, "b.test", h}, {b.f, "a.test", 0xA1}} {
			wg.Go(func() {
				per := float64(rate) / senders
				p := packet(dir.handle, uint32(i), 174)
				n := 0
				for {
					el := time.Since(start)
					if el > dur {
						return
					}
					for due := int(per * el.Seconds()); n < due; n++ {
						dir.f.SendPacket(dir.to, p)
						offered.Add(1)
					}
					time.Sleep(time.Millisecond)
				}
			})
		}
	}
	wg.Wait()
	time.Sleep(time.Second)
	a1, b1 := a.f.CallStats(), b.f.CallStats()
	sa1, _ := federation.OutboundStats(a.f, "b.test")
	off := offered.Load() / 2
	sent := a1.Sent - a0.Sent
	recv := b1.Received - b0.Received
	t.Logf("a->b: offered %d, dropped full %d (%.2f%%), noconn %d, send %d; sent %d", off,
		a1.DroppedFull-a0.DroppedFull, 100*float64(a1.DroppedFull-a0.DroppedFull)/float64(off),
		a1.DroppedNoConn-a0.DroppedNoConn, a1.DroppedSend-a0.DroppedSend, sent)
	t.Logf("a->b QUIC: packets sent %d, lost %d; cwnd %d, srtt %s", sa1.PacketsSent-sa0.PacketsSent,
		sa1.PacketsLost-sa0.PacketsLost, sa1.CongestionWindow, sa1.SmoothedRTT)
	t.Logf("b: dropped read-queue full %d", b1.DroppedReadFull-b0.DroppedReadFull)
	t.Logf("a->b: received %d; sent-received %d (%.2f%% of offered); total loss %.2f%%", recv, int64(sent)-int64(recv),
		100*float64(int64(sent)-int64(recv))/float64(off), 100*(1-float64(recv)/float64(off)))
}
