package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xchat-im/xchat/client/filecrypt"
	"github.com/xchat-im/xchat/cmd/internal/clierr"
	"github.com/xchat-im/xchat/cmd/internal/clitest"
	"github.com/xchat-im/xchat/spec/wire"
)

// The binaries of these tests: xchat and xchatd built with go build, as a
// user builds them (not the race-enabled test binary).

// buildBinaries builds xchat and xchatd into a temporary directory.
func buildBinaries(t *testing.T) (xchat, xchatd string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binaries and transfers 64 MiB")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	bin := t.TempDir()
	if out, err := exec.Command(goCmd, "build", "-o", bin+string(filepath.Separator), ".", "../xchatd").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(bin, "xchat"), filepath.Join(bin, "xchatd")
}

// federation is two homeservers, a.test and b.test, from one development
// CA, each knowing the other with --peer.
type federation struct {
	dir    string            // the working directory of every command
	addrs  map[string]string // domain → UDP address
	xchat  string
	data   map[string]string // domain → data directory
	xchatd string
}

func startFederation(t *testing.T) *federation {
	t.Helper()
	xchat, xchatd := buildBinaries(t)
	return startFederationWith(t, xchat, xchatd)
}

// startFederationWith starts the federation with binaries already built.
func startFederationWith(t *testing.T, xchat, xchatd string) *federation {
	t.Helper()
	f := &federation{dir: t.TempDir(), addrs: map[string]string{}, data: map[string]string{}, xchat: xchat, xchatd: xchatd}
	domains := []string{"a.test", "b.test"}
	f.run(t, xchatd, append([]string{"dev-ca", "--out", "CA"}, domains...)...)
	// Each server names the other with --peer: both ports are chosen
	// (bound and released) before either starts.
	for _, d := range domains {
		f.addrs[d] = freeUDPAddr(t)
		f.data[d] = filepath.Join(f.dir, "data-"+d)
	}
	for _, d := range domains {
		args := []string{"--domain", d, "--listen", f.addrs[d], "--data", f.data[d],
			"--tls-cert", "CA/" + d + ".pem", "--tls-key", "CA/" + d + ".key", "--trust-ca", "CA/ca.pem"}
		for _, p := range domains {
			if p != d {
				args = append(args, "--peer", p+"="+f.addrs[p])
			}
		}
		s, err := clitest.Start(xchatd, f.dir, nil, args...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Kill)
	}
	return f
}

// freeUDPAddr returns a loopback UDP address that was free a moment ago.
func freeUDPAddr(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// run runs a command in the federation's directory and returns its
// stdout; it fails the test unless the command exits 0.
func (f *federation) run(t *testing.T, name string, args ...string) string {
	t.Helper()
	stdout, stderr, code := f.try(name, args...)
	if code != 0 {
		t.Fatalf("%s %s: exit %d: %s", filepath.Base(name), strings.Join(args, " "), code, stderr)
	}
	return stdout
}

// try runs a command and returns its stdout, stderr and exit status.
func (f *federation) try(name string, args ...string) (string, string, int) {
	cmd := exec.Command(name, args...)
	cmd.Dir = f.dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return stdout.String(), stderr.String(), ee.ExitCode()
	}
	if err != nil {
		return "", err.Error(), -1
	}
	return stdout.String(), stderr.String(), 0
}

// event is a line of send --file --json and file get --json.
type event struct {
	Event   string `json:"event"`
	Done    int64  `json:"done"`
	Total   int64  `json:"total"`
	Resumed int64  `json:"resumed"`
	Rate    int64  `json:"rate"`
	ID      string `json:"id"`
	Path    string `json:"path"`
}

// interruptAt starts xchat args with --json progress and sends it sig as
// soon as a progress line reaches tenths/10 of the total; it fails the
// test when the command ends before. It returns the lines and stderr.
func (f *federation) interruptAt(t *testing.T, tenths int64, sig os.Signal, args ...string) ([]event, string) {
	t.Helper()
	cmd := exec.Command(f.xchat, args...)
	cmd.Dir = f.dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var events []event
	signalled := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("xchat %s printed %q: %v", strings.Join(args, " "), sc.Text(), err)
		}
		events = append(events, e)
		if e.Event == "progress" && e.Done*10 >= e.Total*tenths {
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			signalled = true
			break
		}
	}
	io.Copy(io.Discard, out)
	err = cmd.Wait()
	if !signalled {
		t.Fatalf("xchat %s ended (%v) before %d0%%: %s; events %+v", strings.Join(args, " "), err, tenths, stderr.String(), events)
	}
	if sig == os.Interrupt && cmd.ProcessState.ExitCode() != clierr.ExitError {
		t.Fatalf("xchat %s: exit %v after SIGINT, want %d: %s", strings.Join(args, " "), err, clierr.ExitError, stderr.String())
	}
	return events, stderr.String()
}

// events parses --json output.
func events(t *testing.T, out string) []event {
	t.Helper()
	var es []event
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var e event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		es = append(es, e)
	}
	return es
}

// checkResumed checks the lines of a run that resumed an interrupted
// transfer of total bytes: it starts from where the first run got, and
// ends with done.
func checkResumed(t *testing.T, what string, es []event, total int64) event {
	t.Helper()
	first, last := es[0], es[len(es)-1]
	if first.Event != "start" || first.Total != total || first.Resumed <= 0 || first.Resumed >= total {
		t.Fatalf("%s again: first line %+v, want a start resuming inside %d bytes", what, first, total)
	}
	if last.Event != "done" || last.Done != total || last.Resumed != first.Resumed {
		t.Fatalf("%s again: last line %+v", what, last)
	}
	t.Logf("%s resumed at %d of %d bytes", what, first.Resumed, total)
	return last
}

// recvFile runs bob's recv until a file message arrives (the federation
// relays it asynchronously) and returns its file object.
func (f *federation) recvFile(t *testing.T, profile string) jsonFile {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		out := f.run(t, f.xchat, "--profile", profile, "recv", "--json", "--wait", "500ms")
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if l == "" {
				continue
			}
			var m jsonMessage
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("recv --json line %q: %v", l, err)
			}
			if m.File != nil {
				if m.Type != "file" || m.Text != m.File.Caption {
					t.Errorf("file message %s", l)
				}
				return *m.File
			}
		}
	}
	t.Fatalf("%s received no file message in 30 s", profile)
	return jsonFile{}
}

func writeRandom(t *testing.T, path string, size int, seed uint64) [32]byte {
	t.Helper()
	b := make([]byte, size)
	rand.NewChaCha8([32]byte{byte(seed)}).Read(b)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// A 64 MiB file from alice@a.test to bob@b.test with the binaries: the
// upload and the download are each killed (SIGKILL) at half and resumed
// by the same command (the upload is also stopped with Ctrl-C before),
// and the file arrives byte for byte. A blob changed on the server then
// fails verification and leaves no output.
func TestFileTransferResumes(t *testing.T) {
	t.Parallel()
	f := startFederation(t)
	for _, u := range []struct{ profile, addr, domain string }{{"alice", "alice@a.test", "a.test"}, {"bob", "bob@b.test", "b.test"}} {
		f.run(t, f.xchat, "--profile", u.profile, "register", u.addr, "--server", f.addrs[u.domain], "--ca", "CA/ca.pem")
	}
	const size = 64 << 20
	want := writeRandom(t, filepath.Join(f.dir, "big.bin"), size, 1)

	send := []string{"--profile", "alice", "send", "--file", "big.bin", "bob@b.test", "--caption", "the big one", "--json"}
	start := time.Now()
	// Ctrl-C at a fifth, SIGKILL at half, then to the end: each run
	// continues from where the last one left the homeserver's copy.
	_, stderr := f.interruptAt(t, 2, os.Interrupt, send...)
	if !regexp.MustCompile(`^xchat: interrupted after \d+\.\d MiB of 66\.0 MiB: the same command resumes the upload\n$`).MatchString(stderr) {
		t.Errorf("send after SIGINT: stderr %q", stderr)
	}
	es, _ := f.interruptAt(t, 5, os.Kill, send...)
	if es[0].Event != "start" || es[0].Resumed <= 0 {
		t.Errorf("send after SIGINT: first line %+v, want a start resuming", es[0])
	}
	// An upload counts the bytes of the padded blob.
	sent := checkResumed(t, "send", events(t, f.run(t, f.xchat, send...)), filecrypt.BlobSize(size))
	t.Logf("upload: %s", time.Since(start).Round(time.Millisecond))

	file := f.recvFile(t, "bob")
	if file.ID != sent.ID || file.Name != "big.bin" || file.Size != size || file.MediaType == "" || file.Caption != "the big one" {
		t.Fatalf("bob received %+v, alice sent %+v", file, sent)
	}
	// recv does not download.
	if _, err := os.Stat(filepath.Join(f.dir, "big.bin.got")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("recv created a file: %v", err)
	}

	get := []string{"--profile", "bob", "file", "get", file.ID, "--out", "big.bin.got", "--json"}
	start = time.Now()
	f.interruptAt(t, 5, os.Kill, get...)
	if _, err := os.Stat(filepath.Join(f.dir, "big.bin.got")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an interrupted download left its output: %v", err)
	}
	got := checkResumed(t, "file get", events(t, f.run(t, f.xchat, get...)), size)
	t.Logf("download: %s", time.Since(start).Round(time.Millisecond))
	if got.Path != "big.bin.got" && got.Path != filepath.Join(f.dir, "big.bin.got") {
		t.Errorf("file get saved to %q", got.Path)
	}
	if fileHash(t, filepath.Join(f.dir, "big.bin.got")) != want {
		t.Fatal("the downloaded file differs from the one sent")
	}

	// Tampering: one byte of a blob changed under a.test's data directory.
	writeRandom(t, filepath.Join(f.dir, "small.bin"), 300<<10, 2)
	f.run(t, f.xchat, "--profile", "alice", "send", "--file", "small.bin", "bob@b.test")
	small := f.recvFile(t, "bob")
	// The file's identifier is not the blob's: the blob is the one file
	// of its padded size under blobs/.
	var blob string
	blobSize := int64(wire.PaddedBlobSize(wire.EncryptedFileSize(300 << 10)))
	err := filepath.WalkDir(filepath.Join(f.data["a.test"], "blobs"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if fi, err := d.Info(); err == nil && fi.Size() == blobSize {
			blob = path
		}
		return nil
	})
	if err != nil || blob == "" {
		t.Fatalf("no blob of %d bytes under a.test's data directory: %v", blobSize, err)
	}
	b, err := os.ReadFile(blob)
	if err != nil {
		t.Fatalf("the blob of the small file: %v", err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(blob, b, 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := f.try(f.xchat, "--profile", "bob", "file", "get", small.ID, "--out", "small.got")
	if code != clierr.ExitCorrupt || stdout != "" ||
		!strings.HasPrefix(stderr, "xchat: the file small.bin from alice@a.test failed verification: ") {
		t.Fatalf("file get of a tampered blob: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	t.Logf("tampered: %s", strings.TrimSpace(stderr))
	entries, err := os.ReadDir(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), "small.got") {
			t.Errorf("a failed download left %s", e.Name())
		}
	}
}
