package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
)

// TestCallsRelayTiny runs the calls scenario on the bare relay paths only,
// with the relay as a child process (the test binary as xchat-bench
// calls-relay), a few streams for a second.
func TestCallsRelayTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a load")
	}
	b := runScenario(t, t.TempDir(), []string{"calls", "--paths", "relay,group-relay", "--streams", "4", "--duration", "1s", "--warmup", "200ms",
		"--group-size", "3", "--video", "160x120"}, "bare relay: in a child process", "group-relay", "errors  none")
	var res struct {
		Scenario string `json:"scenario"`
		Runs     []struct {
			Path      string  `json:"path"`
			Streams   int     `json:"streams"`
			Received  int64   `json:"received"`
			RelayCPU  float64 `json:"relay_cpu_seconds"`
			Forwarded float64 `json:"forwarded_per_second"`
		} `json:"runs"`
		Errors map[string]int64 `json:"errors"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Scenario != "calls" || len(res.Runs) != 2 || res.Runs[0].Streams != 4 || res.Runs[1].Streams != 3 || len(res.Errors) != 0 {
		t.Fatalf("JSON: %s", b)
	}
	for _, x := range res.Runs {
		if x.Received <= 0 || x.Forwarded <= 0 || x.RelayCPU < 0 {
			t.Errorf("JSON run %+v", x)
		}
	}
}

func TestCallsUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"calls", "--paths", "nosuch"},
		{"calls", "--streams", "3"},
		{"calls", "--video", "big"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != 1 {
			t.Errorf("%q: exit %d, want 1\n%s", args, code, stderr.String())
		}
	}
}
