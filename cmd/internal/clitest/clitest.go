// Package clitest runs real xchatd homeservers for the testscript suites of
// the xchat and xchatd commands (cmd/xchat/testdata/script,
// cmd/xchatd/testdata/script): a Setup that gives every script its own
// server, and script commands to start and stop more.
package clitest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// StartTimeout bounds how long a server may take to start or to stop.
const StartTimeout = 30 * time.Second

// servingLine is what xchatd serve prints to stdout once it accepts
// connections; it names the bound address.
var servingLine = regexp.MustCompile(`^xchatd: serving \S+ on (\S+) \(udp\)`)

// Server is a running "xchatd serve" process.
type Server struct {
	// Addr is the UDP address it serves on.
	Addr string

	cmd            *exec.Cmd
	stdout, stderr lockedBuffer
	exited         chan struct{} // closed when the process exited
	waitErr        error         // set before exited is closed
}

// Start runs "xchatd serve args..." in dir with env and waits until it
// serves, or fails when it exits first or does not serve within
// StartTimeout. Pass --listen 127.0.0.1:0 to let the system choose a free
// port: Addr is the one bound.
func Start(xchatd, dir string, env []string, args ...string) (*Server, error) {
	s := &Server{exited: make(chan struct{})}
	s.cmd = exec.Command(xchatd, append([]string{"serve"}, args...)...)
	s.cmd.Dir, s.cmd.Env = dir, env
	s.cmd.Stderr = &s.stderr
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			s.stdout.Write([]byte(line + "\n"))
			if m := servingLine.FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
		}
		io.Copy(io.Discard, out)
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	select {
	case s.Addr = <-addr:
		return s, nil
	case <-s.exited:
		return nil, fmt.Errorf("xchatd serve exited before serving (%v): %s", s.waitErr, strings.TrimSpace(s.stderr.String()))
	case <-time.After(StartTimeout):
		s.Kill()
		return nil, fmt.Errorf("xchatd serve did not serve within %s: %s", StartTimeout, strings.TrimSpace(s.stderr.String()))
	}
}

// Stop sends SIGTERM and waits for the process to exit; the error is its
// exit status when it was not 0.
func (s *Server) Stop() error {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return s.waitErr
	case <-time.After(StartTimeout):
		s.Kill()
		return fmt.Errorf("xchatd serve did not stop within %s of SIGTERM", StartTimeout)
	}
}

// Kill kills the process, if it still runs, and waits for it.
func (s *Server) Kill() {
	s.cmd.Process.Kill()
	<-s.exited
}

// Output returns what the process wrote so far.
func (s *Server) Output() (stdout, stderr string) { return s.stdout.String(), s.stderr.String() }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// servers are the servers of one script, by name.
type servers struct {
	mu sync.Mutex
	m  map[string]*Server
}

type serversKey struct{}

// Params are the parts of testscript.Params that give scripts
// homeservers. Xchatd returns the path of the xchatd binary.
func Params(xchatd func() string) testscript.Params {
	return testscript.Params{
		RequireExplicitExec: true,
		Setup:               func(env *testscript.Env) error { return setup(env, xchatd()) },
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"startserver": func(ts *testscript.TestScript, neg bool, args []string) { cmdServe(ts, neg, args, xchatd()) },
			"stopserver":  cmdStop,
			"setvar":      cmdSetvar,
		},
	}
}

// setup gives the script, in $WORK:
//   - a development CA and a certificate for a.test in ca/, $CA its
//     certificate;
//   - a homeserver for a.test on a loopback port the system chose, with
//     its data in data/ ($DATA), open registration, $SERVER its address,
//     known to stopserver as SERVER, killed when the script ends;
//   - $XDG_CONFIG_HOME in $WORK/.config, for xchat's default profile.
func setup(env *testscript.Env, xchatd string) error {
	ca := filepath.Join(env.WorkDir, "ca")
	out, err := exec.Command(xchatd, "dev-ca", "--out", ca, "a.test").CombinedOutput()
	if err != nil {
		return fmt.Errorf("xchatd dev-ca: %v: %s", err, out)
	}
	data := filepath.Join(env.WorkDir, "data")
	s, err := Start(xchatd, env.WorkDir, env.Vars, "--domain", "a.test", "--listen", "127.0.0.1:0", "--data", data,
		"--tls-cert", filepath.Join(ca, "a.test.pem"), "--tls-key", filepath.Join(ca, "a.test.key"))
	if err != nil {
		return err
	}
	env.Defer(s.Kill)
	env.Setenv("SERVER", s.Addr)
	env.Setenv("CA", filepath.Join(ca, "ca.pem"))
	env.Setenv("DATA", data)
	env.Setenv("XDG_CONFIG_HOME", filepath.Join(env.WorkDir, ".config"))
	env.Values[serversKey{}] = &servers{m: map[string]*Server{"SERVER": s}}
	return nil
}

// cmdServe is "startserver NAME [FLAGS...]": it starts "xchatd serve
// FLAGS" in the working directory and waits until it serves; $NAME is then
// its address, and its stdout so far the command's. "! startserver NAME
// FLAGS" expects it to exit before serving, its stderr the command's.
func cmdServe(ts *testscript.TestScript, neg bool, args []string, xchatd string) {
	if len(args) < 1 {
		ts.Fatalf("usage: startserver NAME [xchatd serve flags]")
	}
	env := os.Environ()
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "WORK"} {
		env = append(env, k+"="+ts.Getenv(k))
	}
	s, err := Start(xchatd, ts.MkAbs("."), env, args[1:]...)
	if neg {
		if err == nil {
			s.Kill()
			ts.Fatalf("xchatd serve started on %s", s.Addr)
		}
		fmt.Fprintln(ts.Stderr(), err)
		return
	}
	ts.Check(err)
	ts.Defer(s.Kill)
	stdout, _ := s.Output()
	io.WriteString(ts.Stdout(), stdout)
	reg := ts.Value(serversKey{}).(*servers)
	reg.mu.Lock()
	reg.m[args[0]] = s
	reg.mu.Unlock()
	ts.Setenv(args[0], s.Addr)
}

// cmdStop is "stopserver NAME": it stops the server NAME with SIGTERM and
// requires a clean exit ("! stopserver NAME": an unclean one); the server's
// stdout and stderr become the command's.
func cmdStop(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: stopserver NAME")
	}
	reg := ts.Value(serversKey{}).(*servers)
	reg.mu.Lock()
	s := reg.m[args[0]]
	delete(reg.m, args[0])
	reg.mu.Unlock()
	if s == nil {
		ts.Fatalf("no server %s", args[0])
	}
	err := s.Stop()
	stdout, stderr := s.Output()
	io.WriteString(ts.Stdout(), stdout)
	io.WriteString(ts.Stderr(), stderr)
	var ee *exec.ExitError
	switch {
	case err != nil && !errors.As(err, &ee):
		ts.Fatalf("%v", err)
	case neg && err == nil:
		ts.Fatalf("xchatd serve exited cleanly")
	case !neg && err != nil:
		ts.Fatalf("xchatd serve: %v", err)
	}
}

// cmdSetvar is "setvar NAME": $NAME becomes the previous command's stdout
// without surrounding space (an ID or a code a command printed).
func cmdSetvar(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: setvar NAME")
	}
	ts.Setenv(args[0], strings.TrimSpace(ts.ReadFile("stdout")))
}
