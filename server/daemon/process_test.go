package daemon_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server"
	"github.com/xchat-im/xchat/server/daemon"
	"github.com/xchat-im/xchat/server/devca"
	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

func TestArgs(t *testing.T) {
	t.Parallel()
	args, err := daemon.Config{
		Domain: "a.test", Listen: "127.0.0.1:9", DataDir: "d", DB: "postgres://x", TLSCert: "c.pem", TLSKey: "c.key",
		Registration: server.RegistrationInvite, MaxConnections: 7,
		Peers:    map[string]string{"c.test": "127.0.0.1:3", "b.test": "127.0.0.1:2"},
		TrustCAs: []string{"ca.pem"}, AllowDomains: []string{"b.test"}, DenyDomains: []string{"x.test"},
		Lease: 2 * time.Second, Scan: time.Second,
		Limits: server.Limits{ConnsPerAddress: 3, ClaimsPerTarget: server.Rate{Burst: 5, Interval: time.Minute},
			LookupMisses: server.Rate{Burst: -1}, BlobQuota: 3 << 30, MaxUnfinished: -1,
			UploadLifetime: time.Hour, BlobRetention: 1000 * time.Hour, FedBlobRate: -1},
	}.Args()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Fields("--domain a.test --listen 127.0.0.1:9 --data d --db postgres://x --tls-cert c.pem --tls-key c.key " +
		"--registration invite --max-connections 7 --peer b.test=127.0.0.1:2 --peer c.test=127.0.0.1:3 --trust-ca ca.pem " +
		"--allow-domain b.test --deny-domain x.test --relay-lease 2s --queue-scan 1s " +
		"--max-conns-per-address 3 --claims-per-device 5/1m0s --lookup-misses-per-account none " +
		"--blob-quota 3GiB --max-unfinished-uploads -1 --upload-lifetime 1h0m0s --blob-retention 1000h0m0s --fed-blob-rate none")
	if !slices.Equal(args, want) {
		t.Errorf("Args:\n got %q\nwant %q", args, want)
	}
	if args, err := (daemon.Config{}).Args(); err != nil || len(args) != 0 {
		t.Errorf("zero Config: %q, %v; want no flags", args, err)
	}
	for _, c := range []daemon.Config{{Retry: time.Second}, {OutboundTTL: time.Hour}, {Now: time.Now}, {Domain: "bad domain"},
		{BlobSweep: time.Second}, {Limits: server.Limits{BlobRetention: time.Hour}}} {
		if _, err := c.Args(); err == nil {
			t.Errorf("Args accepted %+v", c)
		}
	}
}

// The flags of Args configure a real xchatd serve: it starts, serves
// with the configured policy and stops cleanly on SIGTERM.
func TestStartProcess(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds xchatd")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	dir := t.TempDir()
	if out, err := exec.Command(goCmd, "build", "-o", dir+string(filepath.Separator), "../../cmd/xchatd").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	caDir := filepath.Join(dir, "ca")
	ca, err := devca.LoadOrCreate(caDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Issue(caDir, "p.test"); err != nil {
		t.Fatal(err)
	}
	args, err := daemon.Config{
		Domain: "p.test", Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "data"),
		TLSCert: devca.DomainCertPath(caDir, "p.test"), TLSKey: devca.DomainKeyPath(caDir, "p.test"),
		Registration: server.RegistrationClosed, MaxConnections: 10,
		Peers: map[string]string{"q.test": "127.0.0.1:9"}, TrustCAs: []string{devca.CertPath(caDir)},
		AllowDomains: []string{"q.test"}, DenyDomains: []string{"r.test"}, Lease: 2 * time.Second, Scan: time.Second,
		Limits: server.Limits{BlobQuota: 1 << 30, MaxUnfinished: 3, UploadLifetime: 2 * time.Hour, BlobRetention: 800 * time.Hour},
	}.Args()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(dir, "xchatd"), append([]string{"serve", "--log-level", "debug"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := daemon.StartProcess(ctx, cmd)
	if err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	t.Cleanup(p.Kill)
	info := serverInfo(t, addrOf(t, p.Addr()), "p.test", devca.CertPath(caDir))
	if info.Registration != wire.RegistrationClosed {
		t.Errorf("server-info registration %d, want closed", info.Registration)
	}
	if l := info.Limits; l.BlobQuota != 1<<30 || l.MaxUnfinishedUploads != 3 || l.UploadLifetimeSeconds != 7200 || l.BlobRetentionSeconds != 800*3600 {
		t.Errorf("server-info blob limits %+v, want those of the flags", l)
	}
	if err := p.Stop(ctx); err != nil {
		t.Fatalf("stop: %v: %s", err, stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), daemon.ReadyPrefix) {
		t.Errorf("stdout not passed on: %q", stdout.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "data", daemon.CertKeyFile)); err != nil {
		t.Error(err)
	}

	// A child that fails to start is reported, and nothing waits.
	bad := exec.Command(filepath.Join(dir, "xchatd"), "serve", "--domain", "bad domain")
	if _, err := daemon.StartProcess(servertest.Context(t), bad); err == nil {
		t.Fatal("StartProcess of a failing xchatd succeeded")
	}
}
