// Command xchat-bench is the load generator of xchat.
//
//	xchat-bench mailbox [--devices N] [--duration D] [--rate R] [--concurrency C] [--bucket B] [--batch K]
//	                    [--xchatd PATH | --server HOST:PORT --domain D [--ca FILE] [--server-pid PID]] [--json FILE]
//
// Without --server it starts its own homeserver: xchatd serve with the
// embedded store in a temporary data directory, a development CA
// (xchatd dev-ca) and a free UDP port on 127.0.0.1. The xchatd binary is
// --xchatd, else the xchatd next to xchat-bench, else one built with
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
	"os"
	"os/signal"
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
	root.AddCommand(mailboxCmd(stdout, stderr))
	return root
}

func mailboxCmd(stdout, stderr io.Writer) *cobra.Command {
	o := bench.DefaultOptions()
	var jsonFile string
	cmd := &cobra.Command{
		Use:   "mailbox",
		Short: "Devices on one homeserver send envelopes to each other",
		Long: "Registers --devices devices on one homeserver, each on a connection of its own reading its push\n" +
			"stream and acknowledging deliveries, and sends sealed-size envelopes of random bytes from random\n" +
			"devices to random others for --duration, at --rate envelopes/s or as fast as the server allows\n" +
			"(--rate 0) with --concurrency send requests in flight. Every envelope is followed from send to\n" +
			"delivery: one accepted and never delivered is lost, one delivered twice duplicated.\n\n" +
			"Without --server it starts xchatd serve itself (embedded store, temporary data directory,\n" +
			"development CA, free port on 127.0.0.1): the binary is --xchatd, else the xchatd next to\n" +
			"xchat-bench, else one built with go build from the xchat module of the working directory.\n\n" +
			"A progress line goes to stderr every second; the table to stdout, and with --json FILE the\n" +
			"result as JSON. The exit status is 2 when the run counted any error.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Progress = stderr
			res, err := bench.Mailbox(cmd.Context(), o)
			if err != nil {
				return err
			}
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
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Devices, "devices", o.Devices, "devices connected to the homeserver, sending to each other")
	f.DurationVar(&o.Duration, "duration", o.Duration, "how long to send")
	f.Float64Var(&o.Rate, "rate", o.Rate, "envelopes per second in total, paced; 0: as fast as the server allows")
	f.IntVar(&o.Concurrency, "concurrency", o.Concurrency, "send requests in flight at most")
	f.IntVar(&o.Bucket, "bucket", o.Bucket, "padding bucket of the envelopes: a power of two from 256 to 65536 (sealed size 1120+bucket+16)")
	f.IntVar(&o.Batch, "batch", o.Batch, "envelopes per send request (1 to 256)")
	f.DurationVar(&o.Drain, "drain", o.Drain, "how long to wait for deliveries after the senders stop")
	f.StringVar(&o.Xchatd, "xchatd", "", "xchatd binary to start (default: next to xchat-bench, else built with go build)")
	f.StringVar(&o.Server, "server", "", "target a running homeserver at HOST:PORT instead of starting one")
	f.StringVar(&o.Domain, "domain", "", "domain of the homeserver (required with --server; default bench.test for the started one)")
	f.StringVar(&o.CAFile, "ca", "", "PEM root CA that the --server's certificate is trusted with (default: the system roots)")
	f.IntVar(&o.ServerPID, "server-pid", 0, "process id of the --server, to report its CPU and memory")
	f.StringVar(&jsonFile, "json", "", "also write the result as JSON to FILE")
	return cmd
}
