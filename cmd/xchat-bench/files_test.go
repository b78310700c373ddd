package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// asMainEnv makes the test binary run as xchat-bench: the files scenario
// starts its raw QUIC peer as "xchat-bench raw-quic-peer" with the running
// executable, which in a test is the test binary.
const asMainEnv = "XCHAT_BENCH_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		main()
	}
	os.Exit(m.Run())
}

// TestFilesTiny runs the files scenario at 1 MiB only, moved twice, with
// the raw QUIC peer as a child process.
func TestFilesTiny(t *testing.T) {
	dir, xchatd := buildXchatd(t, "moves files")
	b := runScenario(t, dir, []string{"files", "--sizes", "1MiB", "--min-bytes", "2MiB", "--xchatd", xchatd},
		"raw QUIC peer in a child process", "federation", "peak RSS", "errors  none")
	var res struct {
		Scenario string `json:"scenario"`
		Sizes    []struct {
			FileBytes int64 `json:"file_bytes"`
			Repeats   int   `json:"repeats"`
			Transfers []struct {
				Path  string  `json:"path"`
				MBps  float64 `json:"mb_per_second"`
				OfRaw float64 `json:"of_raw"`
			} `json:"transfers"`
			Memory []struct {
				PeakRSS int64 `json:"peak_rss_bytes"`
			} `json:"memory"`
		} `json:"sizes"`
		Errors map[string]int64 `json:"errors"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Scenario != "files" || len(res.Sizes) != 1 || res.Sizes[0].FileBytes != 1<<20 || res.Sizes[0].Repeats != 2 ||
		len(res.Sizes[0].Transfers) != 5 || len(res.Sizes[0].Memory) != 4 || len(res.Errors) != 0 {
		t.Fatalf("JSON: %s", b)
	}
	for _, x := range res.Sizes[0].Transfers {
		if x.MBps <= 0 || (x.Path != "raw QUIC" && x.OfRaw <= 0) {
			t.Errorf("JSON transfer %+v", x)
		}
	}
}

// runScenario runs xchat-bench with args and --json, this test binary
// standing for xchat-bench in the child processes it starts, checks that
// it exits 0 with a table holding every wanted string, and returns the
// JSON it wrote.
func runScenario(t *testing.T, dir string, args []string, wantInTable ...string) []byte {
	t.Helper()
	t.Setenv(asMainEnv, "1")
	jsonFile := filepath.Join(dir, "out.json")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, append(args, "--json", jsonFile), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	t.Logf("\n%s", stdout.String())
	for _, want := range wantInTable {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
