package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/xchat-im/xchat/server/daemon"
)

// xchatdPackage is built when no xchatd binary is given or found.
const xchatdPackage = "github.com/xchat-im/xchat/cmd/xchatd"

// childServer is an xchatd serve process started for a run.
type childServer struct {
	cmd    *exec.Cmd
	p      *daemon.Process
	stderr *tailBuffer
	xchatd string   // the binary, and
	args   []string // its arguments: a killed server is started again with them
	addr   string
	domain string
	caFile string
	store  string // "embedded SQLite" or "PostgreSQL schema NAME"
}

// findXchatd returns the xchatd binary to run: path when set, else the
// xchatd next to the running executable, else one built with go build
// into dir.
func findXchatd(ctx context.Context, path, dir string, progress io.Writer) (string, error) {
	if path != "" {
		return path, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "xchatd")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", errors.New("no xchatd next to this binary and no go command to build one: pass --xchatd PATH")
	}
	fmt.Fprintf(progress, "xchat-bench: building xchatd (go build %s)\n", xchatdPackage)
	out := filepath.Join(dir, "xchatd")
	cmd := exec.CommandContext(ctx, goCmd, "build", "-o", out, xchatdPackage)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s (run inside the xchat module, or pass --xchatd PATH): %v\n%s", xchatdPackage, err, b)
	}
	return out, nil
}

// serverSet is the homeservers a run started, and what to clean up.
type serverSet struct {
	servers []*childServer
	cleanup []func()
}

// stop ends the servers and removes their PostgreSQL schemas.
func (s *serverSet) stop() {
	var wg sync.WaitGroup
	for _, c := range s.servers {
		wg.Add(1)
		go func() { defer wg.Done(); c.stop() }()
	}
	wg.Wait()
	for i := len(s.cleanup) - 1; i >= 0; i-- {
		s.cleanup[i]()
	}
}

// startServers makes one development CA with a certificate for each domain
// in dir and starts one xchatd serve per domain on free loopback UDP ports,
// each knowing the others as static federation peers and trusting the CA.
// With db empty each uses the embedded store in a data directory under
// dir; else each gets a fresh schema of that PostgreSQL database, dropped
// by stop. It returns once every server serves.
func startServers(ctx context.Context, xchatd, dir, db string, domains []string, extra []string, pprofPort int) (*serverSet, error) {
	caDir := filepath.Join(dir, "ca")
	if b, err := exec.CommandContext(ctx, xchatd, append([]string{"dev-ca", "--out", caDir}, domains...)...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("xchatd dev-ca: %v\n%s", err, b)
	}
	addrs := make([]string, len(domains))
	for i := range domains {
		a, err := freeUDPAddr()
		if err != nil {
			return nil, err
		}
		addrs[i] = a
	}
	set := &serverSet{}
	for i, domain := range domains {
		cfg := daemon.Config{Domain: domain, Listen: addrs[i], DataDir: filepath.Join(dir, "data-"+domain),
			TLSCert: filepath.Join(caDir, domain+".pem"), TLSKey: filepath.Join(caDir, domain+".key")}
		if len(domains) > 1 {
			cfg.TrustCAs = []string{filepath.Join(caDir, "ca.pem")}
			cfg.Peers = make(map[string]string)
			for j, other := range domains {
				if j != i {
					cfg.Peers[other] = addrs[j]
				}
			}
		}
		storeName := "embedded SQLite"
		if db != "" {
			u, schema, drop, err := freshSchema(ctx, db)
			if err != nil {
				set.stop()
				return nil, err
			}
			set.cleanup = append(set.cleanup, drop)
			if b, err := exec.CommandContext(ctx, xchatd, "migrate", "--db", u).CombinedOutput(); err != nil {
				set.stop()
				return nil, fmt.Errorf("xchatd migrate: %v\n%s", err, b)
			}
			cfg.DB = u
			storeName = "PostgreSQL schema " + schema
		}
		args, err := cfg.Args()
		if err != nil {
			set.stop()
			return nil, err
		}
		args = append(append([]string{"serve"}, args...), "--log-level", "warn")
		if pprofPort > 0 {
			args = append(args, "--pprof", fmt.Sprintf("127.0.0.1:%d", pprofPort+i))
		}
		s, err := startServer(ctx, xchatd, append(args, extra...))
		if err != nil {
			set.stop()
			return nil, err
		}
		s.addr, s.domain, s.caFile, s.store = addrs[i], domain, filepath.Join(caDir, "ca.pem"), storeName
		set.servers = append(set.servers, s)
	}
	return set, nil
}

// freshSchema creates a new schema in the PostgreSQL database at base and
// returns base with its search_path set to it, and a function that drops it.
func freshSchema(ctx context.Context, base string) (u, schema string, drop func(), err error) {
	pu, err := url.Parse(base)
	if err != nil || (pu.Scheme != "postgres" && pu.Scheme != "postgresql") {
		return "", "", nil, fmt.Errorf("--db %q: want a postgres:// URL", base)
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	schema = "xchat_bench_" + hex.EncodeToString(rnd[:])
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", "", nil, fmt.Errorf("--db: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", "", nil, fmt.Errorf("--db: create schema: %w", err)
	}
	q := pu.Query()
	q.Set("search_path", schema)
	pu.RawQuery = q.Encode()
	drop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, base); err == nil {
			conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			conn.Close(ctx)
		}
	}
	return pu.String(), schema, drop, nil
}

// startServer starts xchatd with args and returns once it serves.
func startServer(ctx context.Context, xchatd string, args []string) (*childServer, error) {
	cmd := exec.Command(xchatd, args...)
	dieWithParent(cmd)
	s := &childServer{cmd: cmd, stderr: &tailBuffer{max: 16 << 10}, xchatd: xchatd, args: args}
	cmd.Stderr = s.stderr
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	p, err := daemon.StartProcess(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, s.stderr)
	}
	s.p = p
	return s, nil
}

// stop ends the server with SIGTERM, or SIGKILL after 15 s.
func (s *childServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	s.p.Stop(ctx)
}

func freeUDPAddr() (string, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.LocalAddr().String(), nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.b))
}

// procStats are a process's resource figures from /proc.
type procStats struct {
	CPU  time.Duration // user + system
	RSS  int64         // bytes resident now (VmRSS)
	Peak int64         // peak resident bytes (VmHWM)
}

// loadAverage returns the machine's 1-minute load average, or 0 when
// /proc/loadavg cannot be read.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// clockTick is the unit of /proc/PID/stat times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// readProc reads the CPU time and memory of process pid.
func readProc(pid int) (procStats, error) {
	var st procStats
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	// The command name may hold spaces: fields follow the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return st, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return st, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return st, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	st.CPU = time.Duration(utime+stime) * clockTick
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		fs := strings.Fields(v) // "1234 kB"
		if len(fs) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			continue
		}
		if k == "VmRSS" {
			st.RSS = n << 10
		} else {
			st.Peak = n << 10
		}
	}
	return st, nil
}
