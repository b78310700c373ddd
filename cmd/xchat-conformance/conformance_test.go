package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xchat-im/xchat/conformance"
	"github.com/xchat-im/xchat/server"
	"github.com/xchat-im/xchat/server/daemon"
	"github.com/xchat-im/xchat/server/servertest"
)

// The conformance run that CI does: a freshly built xchatd, started as a
// child process with registration by invite, a static peer entry for the
// domain the suite plays and the suite's CA trusted; every test must pass
// (the run is --strict, so SHOULD tests count too) and none may be skipped
// except the one for the closed policy, which runs against a second xchatd
// started with --registration closed.
func TestConformanceEmbedded(t *testing.T) {
	t.Parallel()
	runConformance(t, "")
}

// The same against xchatd on PostgreSQL (TEST_DATABASE_URL).
func TestConformancePostgres(t *testing.T) {
	t.Parallel()
	runConformance(t, servertest.PostgresURL(t))
}

func runConformance(t *testing.T, db string) {
	xchatd := buildXchatd(t)
	dir := t.TempDir()
	mustRun(t, dir, xchatd, "dev-ca", "--out", "CA", "a.test", "peer.test")
	if db != "" {
		mustRun(t, dir, xchatd, "migrate", "--db", db)
	}
	addr, peer := freeUDP(t), freeUDP(t)
	startServe(t, xchatd, dir, daemon.Config{Domain: "a.test", Listen: addr, DataDir: "data", DB: db,
		TLSCert: "CA/a.test.pem", TLSKey: "CA/a.test.key", Registration: server.RegistrationInvite,
		TrustCAs: []string{"CA/ca.pem"}, Peers: map[string]string{"peer.test": peer},
		// Three devices fill a call room, so that the suite's accounts
		// reach call_full (test 12.3/3).
		Limits: server.Limits{MaxCallMembers: 3}})
	invites := makeInvites(t, xchatd, dir, db, 16)
	if err := os.WriteFile(filepath.Join(dir, "invites"), []byte(strings.Join(invites, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"run", "--server", addr, "--domain", "a.test", "--ca", filepath.Join(dir, "CA/ca.pem"),
		"--invites", filepath.Join(dir, "invites"),
		"--peer-domain", "peer.test", "--peer-listen", peer,
		"--peer-cert", filepath.Join(dir, "CA/peer.test.pem"), "--peer-key", filepath.Join(dir, "CA/peer.test.key"),
		"--json", filepath.Join(dir, "report.json"), "--junit", filepath.Join(dir, "report.xml"), "--strict"}, &stdout, &stderr)
	t.Logf("conformance run in %s:\n%s%s", time.Since(start).Round(time.Millisecond), stdout.String(), stderr.String())
	if code != 0 {
		t.Fatalf("xchat-conformance run exited %d", code)
	}
	rep := readReport(t, filepath.Join(dir, "report.json"))
	checkJUnit(t, filepath.Join(dir, "report.xml"), len(rep.Results))
	skipped := map[string]bool{}
	for _, r := range rep.Results {
		if r.Status == conformance.Fail && r.Level == conformance.MUST {
			t.Errorf("%s failed: %s", r.ID, r.Message)
		}
		if r.Status == conformance.Skip {
			skipped[r.ID] = true
		}
	}
	if len(rep.Results) != len(conformance.Tests()) {
		t.Errorf("the report has %d tests of %d", len(rep.Results), len(conformance.Tests()))
	}

	// What needs another registration policy, against a second server.
	closedAddr := freeUDP(t)
	startServe(t, xchatd, dir, daemon.Config{Domain: "a.test", Listen: closedAddr, DataDir: "data-closed",
		TLSCert: "CA/a.test.pem", TLSKey: "CA/a.test.key", Registration: server.RegistrationClosed})
	var ids []string
	for id := range skipped {
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return
	}
	stdout.Reset()
	code = run(context.Background(), append([]string{"run", "--server", closedAddr, "--domain", "a.test",
		"--ca", filepath.Join(dir, "CA/ca.pem"), "--json", filepath.Join(dir, "closed.json")}, ids...), &stdout, &stderr)
	t.Logf("closed-policy run:\n%s", stdout.String())
	if code != 0 {
		t.Fatalf("xchat-conformance run (closed policy) exited %d", code)
	}
	for _, r := range readReport(t, filepath.Join(dir, "closed.json")).Results {
		if r.Status != conformance.Pass {
			t.Errorf("%s: %s %s", r.ID, r.Status, r.Message)
		}
	}
}

func readReport(t *testing.T, path string) *conformance.Report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep conformance.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("JSON report: %v", err)
	}
	return &rep
}

func checkJUnit(t *testing.T, path string, n int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Suites []struct {
			Tests int `xml:"tests,attr"`
			Cases []struct {
				Name string `xml:"name,attr"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("JUnit report: %v", err)
	}
	total := 0
	for _, s := range doc.Suites {
		total += len(s.Cases)
	}
	if total != n {
		t.Errorf("the JUnit report has %d test cases, want %d", total, n)
	}
}

var (
	buildOnce sync.Once
	built     string
	buildErr  string
)

// buildXchatd builds xchatd as a user would, with go build, once per test
// binary.
func buildXchatd(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds xchatd and runs the whole suite")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "xchat-conformance-bin")
		if err != nil {
			buildErr = err.Error()
			return
		}
		out, err := exec.Command(goCmd, "build", "-o", filepath.Join(dir, "xchatd"), "../../cmd/xchatd").CombinedOutput()
		if err != nil {
			buildErr = err.Error() + "\n" + string(out)
			return
		}
		built = filepath.Join(dir, "xchatd")
	})
	if buildErr != "" {
		t.Fatalf("go build: %s", buildErr)
	}
	return built
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built != "" {
		os.RemoveAll(filepath.Dir(built))
	}
	os.Exit(code)
}

func freeUDP(t *testing.T) string {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// makeInvites creates n invites with xchatd invite, a few at a time.
func makeInvites(t *testing.T, xchatd, dir, db string, n int) []string {
	t.Helper()
	args := []string{"invite", "--data", "data"}
	if db != "" {
		args = append(args, "--db", db)
	}
	out := make([]string, n)
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			cmd := exec.Command(xchatd, args...)
			cmd.Dir = dir
			b, err := cmd.Output()
			if err != nil {
				t.Errorf("xchatd invite: %v", err)
				return
			}
			out[i] = strings.TrimSpace(string(b))
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return out
}

func mustRun(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// startServe starts xchatd serve in dir with the flags of cfg, waits until
// it serves, and when the test ends stops it with SIGTERM and requires a
// clean exit.
func startServe(t *testing.T, xchatd, dir string, cfg daemon.Config) {
	t.Helper()
	args, err := cfg.Args()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(xchatd, append([]string{"serve"}, args...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := daemon.StartProcess(ctx, cmd)
	if err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := p.Stop(ctx); err != nil {
			t.Errorf("xchatd after SIGTERM: %v: %s", err, stderr.String())
		}
	})
}
