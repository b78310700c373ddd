// Command xchat-bench is the load generator of xchat.
//
//	xchat-bench mailbox     [--devices N] [--duration D] [--rate R] [--concurrency C] [--bucket B | --payload P] [--batch K] ...
//	xchat-bench federation  [--devices N] [--duration D] [--rate R] ...
//	xchat-bench connections [--devices N] [--idle D] [--burst K] ...
//	xchat-bench group       [--devices N] [--duration D] [--rate R] ...
//	xchat-bench crash       [--duration D] [--kills K] [--store sqlite|postgres] [--db URL] [--federation [--kill-side S]] ...
//	xchat-bench files       [--sizes 1MiB,64MiB,1GiB] [--parallel P] [--store sqlite|postgres] [--db URL] ...
//	xchat-bench calls       [--paths relay,server,federation,group-relay,group-server] [--streams N] [--search] ...
//
// Common options: [--db URL] [--xchatd PATH] [--json FILE], or
// [--server HOST:PORT --domain D [--ca FILE] [--server-pid PID]] (and for
// federation [--peer-server HOST:PORT --peer-domain D [--peer-ca FILE]
// [--peer-server-pid PID]]) to target running servers.
//
// Without --server it starts its own homeservers: xchatd serve with the
// embedded store (or, with --db, a fresh schema of that PostgreSQL
// database) in a temporary data directory, a development CA (xchatd
// dev-ca) and free UDP ports on 127.0.0.1. The xchatd binary is --xchatd,
// else the xchatd next to xchat-bench, else one built with
// `go build github.com/xchat-im/xchat/cmd/xchatd` (which needs the go
// command and the working directory inside the xchat module, as with
// `go run ./cmd/xchat-bench`).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/xchat-im/xchat/client/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// errFailed is returned when a run completed but counted errors.
var errFailed = errors.New("the run had errors")

// run executes the command line args and returns the exit code: 0, 1 on
// an error that stopped the run, 2 when the run counted errors (lost,
// duplicated or refused envelopes, failed requests).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		if errors.Is(err, errFailed) {
			return 2
		}
		fmt.Fprintf(stderr, "xchat-bench: %v\n", err)
		return 1
	}
	return 0
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "xchat-bench",
		Short:         "xchat load generator",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		scenarioCmd(stdout, stderr, "mailbox", "Devices on one homeserver send envelopes to each other",
			"Registers --devices devices on one homeserver, each on a connection of its own reading its push\n"+
				"stream and acknowledging deliveries, and sends sealed-size envelopes of random bytes from random\n"+
				"devices to random others for --duration, at --rate envelopes/s or as fast as the server allows\n"+
				"(--rate 0) with --concurrency send requests in flight.", bench.Mailbox),
		scenarioCmd(stdout, stderr, "federation", "Senders on one homeserver, recipients on another",
			"Starts two homeservers, a.bench.test and b.bench.test, federated with each other (static peers,\n"+
				"one development CA trusted by both), registers --devices senders on the first and --devices\n"+
				"recipients on the second, and sends from the senders to random recipients for --duration, at\n"+
				"--rate envelopes/s or as fast as the servers allow. Each envelope is queued durably by the\n"+
				"first server, relayed over xchat-fed/1, stored durably by the second and pushed.", bench.Federation),
		scenarioCmd(stdout, stderr, "connections", "Many idle connected devices, then a burst",
			"Registers --devices devices on one homeserver and keeps them connected and idle for --idle; the\n"+
				"server's memory per connected device is (RSS with them - RSS before) / devices. Then every device\n"+
				"sends --burst envelopes to random others, as fast as the server allows or at --rate.\n"+
				"Many devices need many UDP sockets (one per 16 devices) and connections at the server\n"+
				"(--max-connections, 100,000 by default).", bench.Connections),
		scenarioCmd(stdout, stderr, "group", "Members of one MLS group send messages to the group",
			"Registers --devices members (2 to 20, one device each) with the reference client, puts them in\n"+
				"one MLS group (suite 0xF031) and has every member send text messages to the group for --duration,\n"+
				"at --rate messages/s in total or as fast as they can. Each message is encrypted once with MLS,\n"+
				"sealed for each other member's device, sent, stored, pushed, opened, decrypted and stored by\n"+
				"each recipient's client before it is acknowledged: the whole path of a group message.", bench.Group),
		crashCmd(stdout, stderr),
		filesCmd(stdout, stderr),
		callsCmd(stdout, stderr),
		childServerCmd(stdout, "raw-quic-peer", "The raw QUIC peer of the files scenario (started by xchat-bench files)", bench.ServeRawQUIC),
		childServerCmd(stdout, "calls-relay", "The bare relay of the calls scenario (started by xchat-bench calls)", bench.ServeCallRelay),
	)
	return root
}

func scenarioCmd(stdout, stderr io.Writer, name, short, long string, runScenario func(context.Context, bench.Options) (*bench.Result, error)) *cobra.Command {
	o := bench.DefaultOptions()
	switch name {
	case "connections":
		o.Devices, o.ConnectConcurrency = 1000, 64
	case "group":
		o.Devices = 10
	}
	var jsonFile, cpuProfile string
	cmd := &cobra.Command{
		Use:   name,
		Short: short,
		Long: long + "\n\nEvery envelope is followed from send to delivery: one accepted and never delivered is lost,\n" +
			"one delivered twice duplicated.\n\n" +
			"Without --server it starts xchatd serve itself (embedded store, or a fresh schema of the --db\n" +
			"PostgreSQL database; temporary data directory, development CA, free ports on 127.0.0.1): the\n" +
			"binary is --xchatd, else the xchatd next to xchat-bench, else one built with go build from the\n" +
			"xchat module of the working directory.\n\n" +
			"A progress line goes to stderr every second; the table to stdout, and with --json FILE the\n" +
			"result as JSON. The exit status is 2 when the run counted any error.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Progress = stderr
			stop, err := startCPUProfile(cpuProfile)
			if err != nil {
				return err
			}
			defer stop()
			res, err := runScenario(cmd.Context(), o)
			if err != nil {
				return err
			}
			return report(stdout, jsonFile, res)
		},
	}
	f := cmd.Flags()
	switch name {
	case "federation":
		f.IntVar(&o.Devices, "devices", o.Devices, "senders on the first homeserver, and recipients on the second")
	default:
		f.IntVar(&o.Devices, "devices", o.Devices, "devices connected to the homeserver, sending to each other")
	}
	if name == "connections" {
		f.DurationVar(&o.Idle, "idle", o.Idle, "how long every device stays connected and idle before the burst")
		f.IntVar(&o.Burst, "burst", o.Burst, "envelopes each device sends in the burst")
		f.Float64Var(&o.Rate, "rate", o.Rate, "envelopes per second in total in the burst, paced; 0: as fast as the server allows")
	} else {
		f.DurationVar(&o.Duration, "duration", o.Duration, "how long to send")
		f.DurationVar(&o.Warmup, "warmup", o.Warmup, "first part of --duration left out of the latency figures (its envelopes still count)")
		f.Float64Var(&o.Rate, "rate", o.Rate, "envelopes per second in total, paced; 0: as fast as the server allows")
	}
	f.IntVar(&o.Concurrency, "concurrency", o.Concurrency, "send requests in flight at most")
	f.IntVar(&o.ConnectConcurrency, "connect-concurrency", o.ConnectConcurrency, "devices registering at once")
	f.IntVar(&o.Bucket, "bucket", o.Bucket, "padding bucket of the envelopes: a power of two from 256 to 65536 (sealed size 1120+bucket+16)")
	f.IntVar(&o.Payload, "payload", 0, "plaintext bytes per envelope; sets the bucket to the smallest that holds them (overrides --bucket)")
	f.IntVar(&o.Batch, "batch", o.Batch, "envelopes per send request (1 to 256)")
	f.DurationVar(&o.Drain, "drain", o.Drain, "how long to wait for deliveries after the senders stop")
	f.StringVar(&o.Xchatd, "xchatd", "", "xchatd binary to start (default: next to xchat-bench, else built with go build)")
	f.StringVar(&o.DB, "db", "", "PostgreSQL URL: the started servers store in fresh schemas of this database (default: embedded SQLite)")
	f.StringArrayVar(&o.ServerArgs, "server-arg", nil, "extra argument to each started xchatd serve (repeatable)")
	f.IntVar(&o.PprofPort, "pprof-port", 0, "started servers serve pprof on 127.0.0.1:PORT (the second on PORT+1), for profiling under load")
	f.StringVar(&o.Server, "server", "", "target a running homeserver at HOST:PORT instead of starting one")
	f.StringVar(&o.Domain, "domain", "", "domain of the homeserver (required with --server; default bench.test, or a.bench.test for federation)")
	f.StringVar(&o.CAFile, "ca", "", "PEM root CA that the --server's certificate is trusted with (default: the system roots)")
	f.IntVar(&o.ServerPID, "server-pid", 0, "process id of the --server, to report its CPU and memory")
	if name == "federation" {
		f.StringVar(&o.PeerServer, "peer-server", "", "with --server: the running homeserver of the recipients")
		f.StringVar(&o.PeerDomain, "peer-domain", "", "domain of --peer-server (default b.bench.test for the started one)")
		f.StringVar(&o.PeerCAFile, "peer-ca", "", "PEM root CA for --peer-server")
		f.IntVar(&o.PeerServerPID, "peer-server-pid", 0, "process id of --peer-server, to report its CPU and memory")
	}
	f.StringVar(&jsonFile, "json", "", "also write the result as JSON to FILE")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write the load generator's own CPU profile to FILE")
	return cmd
}

func crashCmd(stdout, stderr io.Writer) *cobra.Command {
	o := bench.DefaultCrashOptions()
	var store, jsonFile string
	cmd := &cobra.Command{
		Use:   "crash",
		Short: "Kill xchatd with SIGKILL under load and check that nothing acknowledged is lost",
		Long: "Starts a homeserver (with --federation two, a.bench.test with the senders and b.bench.test with the\n" +
			"recipients), registers --devices senders and --devices recipients, and sends for --duration while a\n" +
			"server is killed with SIGKILL --kills times at random moments (uniform in [--kill-min, --kill-max]\n" +
			"after the previous restart, shortened so that every kill fits in --duration) and started again on\n" +
			"the same port and store; the devices connect\n" +
			"again. An envelope the server answered ok to must be delivered (else it is lost); one delivered\n" +
			"again after the server answered ok to the recipient's acknowledgement is a violation (one whose\n" +
			"acknowledgement had no answer may come again: at least once). After a drain, every recipient\n" +
			"connects once more as a final check. The started federated servers use a 3 s relay lease. With\n" +
			"--federation, an envelope delivered again after its acknowledgement within the lease and a second\n" +
			"of a kill is reported as relayed again (a relay in flight at the kill, stored again: section 8.8\n" +
			"allows it, clients drop it by section 7.16), not counted as an error.\n\n" +
			"The table goes to stdout, and with --json FILE the result as JSON. The exit status is 2 when an\n" +
			"envelope was lost, delivered after its acknowledgement, or another error was counted.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Progress = stderr
			var err error
			if o.DB, err = storeDB(store, o.DB); err != nil {
				return err
			}
			res, err := bench.Crash(cmd.Context(), o)
			if err != nil {
				return err
			}
			return report(stdout, jsonFile, res)
		},
	}
	f := cmd.Flags()
	f.DurationVar(&o.Duration, "duration", o.Duration, "how long to send; the kills fall in it")
	f.IntVar(&o.Kills, "kills", o.Kills, "how many times to kill a server")
	f.DurationVar(&o.KillMin, "kill-min", 0, "shortest time before a kill (default: half of duration/(kills+1))")
	f.DurationVar(&o.KillMax, "kill-max", 0, "longest time before a kill (default: 1.5 times duration/(kills+1))")
	f.StringVar(&store, "store", "", "sqlite (embedded, the default) or postgres (needs --db or TEST_DATABASE_URL)")
	f.StringVar(&o.DB, "db", "", "PostgreSQL URL: the servers store in fresh schemas of this database (implies --store postgres)")
	f.BoolVar(&o.Federation, "federation", false, "two federated servers: senders on the first, recipients on the second")
	f.StringVar(&o.KillSide, "kill-side", o.KillSide, "with --federation: whose server is killed: sender, receiver or both")
	f.IntVar(&o.Devices, "devices", o.Devices, "senders, and recipients")
	f.IntVar(&o.Concurrency, "concurrency", o.Concurrency, "send requests in flight at most")
	f.IntVar(&o.Batch, "batch", o.Batch, "envelopes per send request (1 to 256)")
	f.DurationVar(&o.Drain, "drain", o.Drain, "how long to wait for deliveries after the senders stop")
	f.StringVar(&o.Xchatd, "xchatd", "", "xchatd binary to start (default: next to xchat-bench, else built with go build)")
	f.StringVar(&jsonFile, "json", "", "also write the result as JSON to FILE")
	return cmd
}

// result is what a scenario returns: a table for people, JSON for tools,
// and whether the run broke one of its guarantees.
type result interface {
	WriteTable(io.Writer) error
	Failed() bool
}

// report writes res as a table to stdout and, with jsonFile, as JSON to
// that file; it returns errFailed when the run failed.
func report(stdout io.Writer, jsonFile string, res result) error {
	if err := res.WriteTable(stdout); err != nil {
		return err
	}
	if jsonFile != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(jsonFile, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if res.Failed() {
		return errFailed
	}
	return nil
}

// startCPUProfile writes a CPU profile to path until stop is called; with
// an empty path it does nothing.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// childServerCmd is a hidden command that a scenario starts as a child
// process: it listens, prints "ready" and serves with serve until it is
// signalled.
func childServerCmd(stdout io.Writer, use, short string,
	serve func(ctx context.Context, pc net.PacketConn, certFile, keyFile string, ready func()) error) *cobra.Command {
	var listen, cert, key string
	cmd := &cobra.Command{
		Use:    use,
		Short:  short,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pc, err := net.ListenPacket("udp", listen)
			if err != nil {
				return err
			}
			defer pc.Close()
			return serve(cmd.Context(), pc, cert, key, func() { fmt.Fprintln(stdout, "ready") })
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:0", "UDP address to listen on")
	f.StringVar(&cert, "cert", "", "PEM certificate chain")
	f.StringVar(&key, "key", "", "PEM private key")
	return cmd
}
