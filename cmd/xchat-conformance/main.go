// Command xchat-conformance checks a homeserver against the xchat
// specification, black-box over the wire, section by section.
//
//	xchat-conformance list
//	xchat-conformance run --server HOST:PORT --domain DOMAIN [--ca FILE] [--invite TOKEN]... [--invites FILE]
//	                      [--peer-domain D --peer-listen ADDR --peer-cert FILE --peer-key FILE]
//	                      [--json FILE] [--junit FILE] [--strict] [TEST-ID-or-SECTION...]
//
// run exits 0 when every MUST test passed (and, with --strict, every
// SHOULD test), 1 when one failed, and 2 when the run could not start.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/xchat-im/xchat/conformance"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// errNonConforming is a run in which a test that counts failed.
var errNonConforming = errors.New("the server does not conform")

// run executes the command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:           "xchat-conformance",
		Short:         "Black-box conformance tests of xchat homeservers",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(listCmd(stdout), runCmd(stdout, stderr))
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errNonConforming):
		return 1
	default:
		fmt.Fprintf(stderr, "xchat-conformance: %v\n", err)
		return 2
	}
}

func listCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "list [TEST-ID-or-SECTION...]",
		Short: "Print every test: id, spec section, level and what it checks",
		RunE: func(cmd *cobra.Command, args []string) error {
			tests, err := conformance.Select(args)
			if err != nil {
				return err
			}
			return conformance.WriteList(stdout, tests)
		},
	}
}

type runOptions struct {
	server, domain, ca, invitesFile string
	invites                         []string
	peerDomain, peerListen          string
	peerCert, peerKey               string
	jsonFile, junitFile             string
	strict, verbose                 bool
	parallel                        int
	timeout                         time.Duration
}

func runCmd(stdout, stderr io.Writer) *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run --server HOST:PORT --domain DOMAIN [flags] [TEST-ID-or-SECTION...]",
		Short: "Run the tests against a server and print a table and a summary",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSuite(cmd.Context(), o, args, stdout, stderr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.server, "server", "", "UDP address of the server under test (required)")
	f.StringVar(&o.domain, "domain", "", "the server's domain (required)")
	f.StringVar(&o.ca, "ca", "", "PEM file of the CA that issued the server's certificate (default: the system roots)")
	f.StringArrayVar(&o.invites, "invite", nil, "invite token for a server with registration policy invite (repeatable)")
	f.StringVar(&o.invitesFile, "invites", "", "file of invite tokens, one a line")
	f.StringVar(&o.peerDomain, "peer-domain", "", "domain the suite plays as a federation peer")
	f.StringVar(&o.peerListen, "peer-listen", "", "UDP address the peer listens on (the server's --peer DOMAIN=ADDRESS)")
	f.StringVar(&o.peerCert, "peer-cert", "", "PEM certificate of the peer domain, from a CA the server trusts (--trust-ca)")
	f.StringVar(&o.peerKey, "peer-key", "", "PEM private key of --peer-cert")
	f.StringVar(&o.jsonFile, "json", "", "write the report as JSON to FILE")
	f.StringVar(&o.junitFile, "junit", "", "write the report as JUnit XML to FILE")
	f.BoolVar(&o.strict, "strict", false, "fail on a failed SHOULD test too")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "log each test as it finishes, on stderr")
	f.IntVar(&o.parallel, "parallel", 8, "tests run at once")
	f.DurationVar(&o.timeout, "timeout", 60*time.Second, "time limit of one test")
	return cmd
}

func runSuite(ctx context.Context, o runOptions, args []string, stdout, stderr io.Writer) error {
	if o.server == "" || o.domain == "" {
		return errors.New("--server and --domain are required")
	}
	tests, err := conformance.Select(args)
	if err != nil {
		return err
	}
	c := conformance.Config{Server: o.server, Domain: o.domain, Invites: o.invites, Parallel: o.parallel, Timeout: o.timeout}
	if o.verbose {
		c.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if o.ca != "" {
		if c.RootCAs, err = loadRoots(o.ca); err != nil {
			return err
		}
	}
	if o.invitesFile != "" {
		toks, err := readLines(o.invitesFile)
		if err != nil {
			return err
		}
		c.Invites = append(c.Invites, toks...)
	}
	if o.peerDomain != "" || o.peerListen != "" || o.peerCert != "" || o.peerKey != "" {
		if o.peerDomain == "" || o.peerListen == "" || o.peerCert == "" || o.peerKey == "" {
			return errors.New("the federation peer needs --peer-domain, --peer-listen, --peer-cert and --peer-key")
		}
		cert, err := tls.LoadX509KeyPair(o.peerCert, o.peerKey)
		if err != nil {
			return fmt.Errorf("--peer-cert: %w", err)
		}
		c.Peer = &conformance.PeerConfig{Domain: o.peerDomain, Listen: o.peerListen, Certificate: cert}
	}
	rep, err := conformance.Run(ctx, c, tests)
	if err != nil {
		return err
	}
	if err := rep.WriteTable(stdout); err != nil {
		return err
	}
	if o.jsonFile != "" {
		if err := writeFile(o.jsonFile, rep.WriteJSON); err != nil {
			return err
		}
	}
	if o.junitFile != "" {
		if err := writeFile(o.junitFile, rep.WriteJUnit); err != nil {
			return err
		}
	}
	if !rep.OK(o.strict) {
		return errNonConforming
	}
	return nil
}

func loadRoots(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("--ca %s: no PEM certificate", path)
	}
	return pool, nil
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--invites: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			out = append(out, s)
		}
	}
	return out, sc.Err()
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
