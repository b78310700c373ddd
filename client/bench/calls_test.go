package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

func TestCallsOptionsValidate(t *testing.T) {
	for _, mod := range []func(*CallsOptions){
		func(o *CallsOptions) { o.Paths = nil },
		func(o *CallsOptions) { o.Paths = []string{"nosuch"} },
		func(o *CallsOptions) { o.Streams = 3 },
		func(o *CallsOptions) { o.Streams = 0 },
		func(o *CallsOptions) { o.Duration = 0 },
		func(o *CallsOptions) { o.AudioBytes = 5 },
		func(o *CallsOptions) { o.AudioBytes = wire.MaxPacketData + 1 },
		func(o *CallsOptions) { o.FrameRate = 0 },
		func(o *CallsOptions) { o.GroupSize = 1 },
		func(o *CallsOptions) { o.VideoSenders = o.GroupSize + 1 },
		func(o *CallsOptions) { o.VideoWidth, o.VideoHeight = 4000, 4000 },
		func(o *CallsOptions) { o.Search, o.SearchStart = true, 3 },
		func(o *CallsOptions) { o.Search, o.SearchMax = true, 10 },
	} {
		o := DefaultCallsOptions()
		mod(&o)
		if err := o.validate(); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	o := DefaultCallsOptions()
	if err := o.validate(); err != nil {
		t.Error(err)
	}
	if got := ParseCallsPaths(" relay,server,,relay "); len(got) != 2 || got[0] != "relay" || got[1] != "server" {
		t.Errorf("ParseCallsPaths: %q", got)
	}
}

// tinyCalls returns options of a run of a few seconds.
func tinyCalls(paths ...string) CallsOptions {
	o := DefaultCallsOptions()
	o.Paths, o.Streams, o.Duration, o.Warmup, o.Drain = paths, 6, time.Second, 200*time.Millisecond, 2*time.Second
	o.GroupSize, o.VideoSenders, o.VideoWidth, o.VideoHeight = 4, 2, 160, 120
	o.ConnectConcurrency = 4
	return o
}

// checkCalls fails t unless every run moved packets, and logs the table.
func checkCalls(t *testing.T, res *CallsResult, runs int) {
	t.Helper()
	var table strings.Builder
	res.WriteTable(&table)
	t.Logf("\n%s", table.String())
	if res.Failed() || len(res.Runs) != runs {
		t.Fatalf("errors %v, %d runs, want %d", res.Errors, len(res.Runs), runs)
	}
	for _, x := range res.Runs {
		// Packets are not retransmitted: on a loaded machine a few may
		// drop, so only most of them must arrive.
		if x.Expected == 0 || x.Received*2 < x.Expected || x.Received > x.Expected || x.SentPerSecond <= 0 || x.ForwardedPerSecond <= 0 {
			t.Errorf("%s: %+v", x.Path, x)
		}
		if x.Latency.P50 <= 0 || x.Latency.P50 > x.Latency.P99 || x.Latency.P99 > x.Latency.Max {
			t.Errorf("%s: latency %+v", x.Path, x.Latency)
		}
		if x.RelayCPUSeconds <= 0 || x.GeneratorCores <= 0 {
			t.Errorf("%s: CPU %+v", x.Path, x)
		}
		if isGroupPath(x.Path) && (x.VideoLatency == nil || x.Participants != 4 || x.Calls != 1) {
			t.Errorf("%s: group %+v", x.Path, x)
		}
		if !isGroupPath(x.Path) && (x.Participants != 2 || x.Calls != x.Streams/2) {
			t.Errorf("%s: calls %+v", x.Path, x)
		}
	}
}

// TestCallsBareRelay runs one-to-one calls and a group call with video
// through the bare relay in this process.
func TestCallsBareRelay(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs a load")
	}
	o := tinyCalls(CallsRelay, CallsGroupRelay)
	res, err := Calls(testCtx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	checkCalls(t, res, 2)
	if res.Relay != "this process" || res.Runs[0].Path != CallsRelay || res.Runs[1].Path != CallsGroupRelay {
		t.Errorf("result %+v", res)
	}
}

// TestCallsSearch searches the bare relay between 2 and 8 streams: on
// loopback it holds them all, or finds a smaller largest count.
func TestCallsSearch(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs a load")
	}
	o := tinyCalls(CallsRelay)
	o.Search, o.SearchStart, o.SearchMax, o.SearchDuration = true, 2, 8, 500*time.Millisecond
	res, err := Calls(testCtx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	res.WriteTable(&table)
	t.Logf("\n%s", table.String())
	if len(res.Max) != 1 || len(res.Runs) < 1 || !res.Runs[0].Search || res.Runs[0].Streams != 2 {
		t.Fatalf("result %+v", res)
	}
	m := res.Max[0]
	if m.Streams%2 != 0 || m.Streams > 8 || (m.FirstFailed == 0 && m.Streams != 8) || (m.FirstFailed != 0 && m.FirstFailed <= m.Streams) {
		t.Errorf("max %+v", m)
	}
	for _, x := range res.Runs {
		if x.Streams < 2 || x.Streams > 8 || x.Streams%2 != 0 {
			t.Errorf("step %+v", x)
		}
	}
}

// TestCallsServers runs one-to-one calls through one homeserver and
// between two federated ones, and a group call with video through one,
// each a child xchatd.
func TestCallsServers(t *testing.T) {
	t.Parallel()
	o := tinyCalls(CallsServer, CallsFederation, CallsGroupServer)
	o.Xchatd = xchatdBinary(t)
	res, err := Calls(testCtx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	checkCalls(t, res, 3)
}
