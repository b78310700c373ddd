package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"syscall"

	"github.com/xchat-im/xchat/server"
)

// Args returns the flags of xchatd serve that configure the daemon c
// configures, for starting it as a child process (StartProcess). Zero
// fields are left to the flags' defaults; Logger and Out have no flag (the
// child logs to its stderr and writes the ready line to its stdout). Args
// fails for an invalid Config and for one that sets a field without a
// flag.
func (c Config) Args() ([]string, error) {
	if _, err := c.withDefaults(); err != nil {
		return nil, err
	}
	if c.Retry != 0 || c.MaxRetry != 0 || c.OutboundTTL != 0 || c.Now != nil || c.BlobSweep != 0 {
		return nil, errors.New("daemon: Retry, MaxRetry, OutboundTTL, Now and BlobSweep have no xchatd serve flag")
	}
	var args []string
	str := func(flag, v string) {
		if v != "" {
			args = append(args, flag, v)
		}
	}
	str("--domain", c.Domain)
	str("--listen", c.Listen)
	str("--data", c.DataDir)
	str("--db", c.DB)
	str("--tls-cert", c.TLSCert)
	str("--tls-key", c.TLSKey)
	if c.Registration != server.RegistrationOpen {
		str("--registration", c.Registration.String())
	}
	if c.MaxConnections != 0 {
		str("--max-connections", fmt.Sprint(c.MaxConnections))
	}
	domains := make([]string, 0, len(c.Peers))
	for d := range c.Peers {
		domains = append(domains, d)
	}
	slices.Sort(domains)
	for _, d := range domains {
		str("--peer", d+"="+c.Peers[d])
	}
	for _, f := range c.TrustCAs {
		str("--trust-ca", f)
	}
	for _, d := range c.AllowDomains {
		str("--allow-domain", d)
	}
	for _, d := range c.DenyDomains {
		str("--deny-domain", d)
	}
	if c.Lease != 0 {
		str("--relay-lease", c.Lease.String())
	}
	if c.Scan != 0 {
		str("--queue-scan", c.Scan.String())
	}
	l := c.Limits
	if l.ConnsPerAddress != 0 {
		str("--max-conns-per-address", fmt.Sprint(l.ConnsPerAddress))
	}
	if l.ConnsPerAccount != 0 {
		str("--max-conns-per-account", fmt.Sprint(l.ConnsPerAccount))
	}
	for _, r := range []struct {
		flag string
		rate server.Rate
	}{
		{"--auth-failures-per-address", l.AuthFailuresPerAddress},
		{"--auth-failures-per-account", l.AuthFailuresPerAccount},
		{"--claims-per-account", l.ClaimsPerRequester},
		{"--claims-per-device", l.ClaimsPerTarget},
		{"--lookup-misses-per-account", l.LookupMisses},
		{"--registrations-per-address", l.Registrations},
	} {
		if r.rate != (server.Rate{}) {
			str(r.flag, r.rate.String())
		}
	}
	if l.BlobQuota != 0 {
		str("--blob-quota", server.FormatSize(l.BlobQuota))
	}
	if l.MaxUnfinished != 0 {
		str("--max-unfinished-uploads", fmt.Sprint(l.MaxUnfinished))
	}
	if l.UploadLifetime != 0 {
		str("--upload-lifetime", l.UploadLifetime.String())
	}
	if l.BlobRetention != 0 {
		str("--blob-retention", l.BlobRetention.String())
	}
	if l.FedBlobRate != 0 {
		str("--fed-blob-rate", server.FormatSize(l.FedBlobRate))
	}
	if l.MaxCallMembers != 0 {
		str("--max-call-members", fmt.Sprint(l.MaxCallMembers))
	}
	if l.MaxCallRooms != 0 {
		str("--max-call-rooms", fmt.Sprint(l.MaxCallRooms))
	}
	return args, nil
}

// Process is a homeserver running as a child process (xchatd serve),
// started with StartProcess.
type Process struct {
	cmd    *exec.Cmd
	addr   string
	exited chan struct{}
	err    error // of cmd.Wait, set before exited is closed
}

// StartProcess starts cmd, an xchatd serve command (typically with the
// flags of Config.Args), and returns once the child writes its ready line
// (ReadyPrefix) to stdout. The lines it writes to stdout go on to
// cmd.Stdout, if set; cmd.Stderr is left to the caller. When the child
// exits first, or ctx ends first, StartProcess returns an error and leaves
// no process behind.
func StartProcess(ctx context.Context, cmd *exec.Cmd) (*Process, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	tee := cmd.Stdout
	cmd.Stdout = pw
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, fmt.Errorf("start xchatd: %w", err)
	}
	p := &Process{cmd: cmd, exited: make(chan struct{})}
	ready := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if tee != nil {
				fmt.Fprintln(tee, sc.Text())
			}
			if _, addr, ok := ParseReady(sc.Text()); ok {
				select {
				case ready <- addr:
				default:
				}
			}
		}
		io.Copy(io.Discard, pr)
	}()
	go func() {
		p.err = cmd.Wait()
		<-copied // everything written to stdout has reached tee
		close(p.exited)
	}()
	select {
	case p.addr = <-ready:
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("xchatd exited before serving: %v", p.err)
	case <-ctx.Done():
		p.Kill()
		return nil, fmt.Errorf("xchatd did not start: %w", ctx.Err())
	}
}

// Addr returns the UDP address the process serves on, from its ready line.
func (p *Process) Addr() string { return p.addr }

// Pid returns the process identifier.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited is closed once the process has exited and its stdout is read.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Wait waits for the process to exit and returns its exit error (nil for
// status 0).
func (p *Process) Wait() error {
	<-p.exited
	return p.err
}

// Stop shuts the process down gracefully with SIGTERM and waits for it to
// exit; when ctx ends first it is killed. It returns the exit error, or
// ctx's error after a kill.
func (p *Process) Stop(ctx context.Context) error {
	select {
	case <-p.exited:
		return p.err
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-ctx.Done():
		p.Kill()
		return fmt.Errorf("xchatd did not stop after SIGTERM: %w", ctx.Err())
	}
}

// Kill kills the process (SIGKILL: no graceful shutdown) and waits for it
// to exit.
func (p *Process) Kill() {
	p.cmd.Process.Kill()
	<-p.exited
}
