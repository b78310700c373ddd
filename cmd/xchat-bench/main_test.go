package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildXchatd builds xchatd into a new temporary directory and returns
// the directory and the binary; it skips the test in -short mode (why
// says what else the test does) or without a go command.
func buildXchatd(t *testing.T, why string) (dir, xchatd string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds xchatd and " + why)
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	dir = t.TempDir()
	xchatd = filepath.Join(dir, "xchatd")
	if out, err := exec.Command(goCmd, "build", "-o", xchatd, "github.com/xchat-im/xchat/cmd/xchatd").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir, xchatd
}

func TestMailboxJSON(t *testing.T) {
	dir, xchatd := buildXchatd(t, "runs a load")
	jsonFile := filepath.Join(dir, "out.json")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"mailbox", "--devices", "2", "--duration", "300ms", "--warmup", "100ms", "--payload", "100",
		"--xchatd", xchatd, "--json", jsonFile}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{"envelopes delivered", "latency send→delivery", "server memory per device", "load generator CPU", "errors"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, stdout.String())
		}
	}
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Scenario string           `json:"scenario"`
		Bucket   int              `json:"bucket"`
		Sent     int64            `json:"sent"`
		Errors   map[string]int64 `json:"errors"`
		Servers  []struct {
			PeakRSS int64 `json:"peak_rss_bytes"`
		} `json:"servers"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Scenario != "mailbox" || res.Bucket != 256 || res.Sent == 0 || len(res.Errors) != 0 || len(res.Servers) != 1 || res.Servers[0].PeakRSS == 0 {
		t.Errorf("JSON: %s", b)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"mailbox", "--devices", "0"},
		{"federation", "--server", "127.0.0.1:1", "--domain", "a.test"},
		{"nosuch"},
		{"crash", "--store", "mysql"},
		{"crash", "--store", "sqlite", "--db", "postgres://127.0.0.1/x"},
		{"crash", "--federation", "--kill-side", "nobody"},
		{"crash", "--kills", "-1"},
		{"files", "--sizes", "0"},
		{"files", "--sizes", "5GiB"},
		{"files", "--min-bytes", "1MiB,2MiB"},
		{"files", "--parallel", "0"},
		{"files", "--client", "curl"},
		{"files", "--store", "mysql"},
		{"files", "--store", "sqlite", "--db", "postgres://127.0.0.1/x"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != 1 || stderr.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr.String())
		}
	}
}
