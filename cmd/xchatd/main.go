// Command xchatd is the xchat homeserver.
//
//	xchatd serve [--domain D] [--listen ADDR] [--data DIR] [--tls-cert F --tls-key F] [--registration open|invite|closed]
//	             [--peer DOMAIN=HOST:PORT]... [--trust-ca FILE]... [--allow-domain D]... [--deny-domain D]...
//	xchatd dev-ca --out DIR DOMAIN...
//	xchatd invite [--data DIR] [--ttl DURATION]
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/xchat-im/xchat/federation"
	"github.com/xchat-im/xchat/server"
	// Named so: the package main tests have a type daemon.
	homeserver "github.com/xchat-im/xchat/server/daemon"
	"github.com/xchat-im/xchat/server/devca"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(stderr, "xchatd: %v\n", err)
		return 1
	}
	return 0
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "xchatd",
		Short:         "xchat homeserver",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(serveCmd(stdout, stderr), devCACmd(stdout), inviteCmd(stdout), migrateCmd(stdout), copyCmd(stdout))
	return root
}

func serveCmd(stdout, stderr io.Writer) *cobra.Command {
	var o homeserver.Config
	var registration, logLevel, pprofAddr string
	var peers []string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the homeserver until SIGINT or SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if o.Registration, err = server.ParseRegistration(registration); err != nil {
				return fmt.Errorf("--registration: %w", err)
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel)
			}
			o.Peers = make(map[string]string, len(peers))
			for _, p := range peers {
				domain, addr, ok := strings.Cut(p, "=")
				if !ok || domain == "" || addr == "" {
					return fmt.Errorf("--peer %q: want DOMAIN=HOST:PORT", p)
				}
				o.Peers[domain] = addr
			}
			o.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
			o.Out = stdout
			if pprofAddr != "" {
				stop, err := servePprof(pprofAddr, o.Logger)
				if err != nil {
					return err
				}
				defer stop()
			}
			return homeserver.Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Domain, "domain", "localhost", "the domain this server serves (user@DOMAIN)")
	f.StringVar(&o.Listen, "listen", "127.0.0.1:7443", "UDP address to listen on")
	f.StringVar(&o.DataDir, "data", "./xchatd-data", "data directory (embedded database, keys, development CA)")
	f.StringVar(&o.DB, "db", "", "PostgreSQL URL (postgres://...); default: the embedded store in --data")
	f.StringVar(&o.TLSCert, "tls-cert", "", "PEM certificate chain for the domain (default: a development certificate in the data directory)")
	f.StringVar(&o.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&registration, "registration", "open", "who may register: open, invite or closed")
	f.IntVar(&o.MaxConnections, "max-connections", server.DefaultMaxConnections, "concurrent client connections; more are refused")
	f.StringArrayVar(&peers, "peer", nil, "static federation peer DOMAIN=HOST:PORT, overriding DNS (repeatable)")
	f.StringArrayVar(&o.TrustCAs, "trust-ca", nil, "PEM file of extra root CAs for peers' certificates, added to the system roots (repeatable)")
	f.StringArrayVar(&o.AllowDomains, "allow-domain", nil, "federate only with these domains (repeatable; default: any)")
	f.StringArrayVar(&o.DenyDomains, "deny-domain", nil, "never federate with this domain (repeatable)")
	f.DurationVar(&o.Lease, "relay-lease", federation.DefaultLease, "how long a relay worker holds the envelopes it claimed; a process that dies leaves them to others after this")
	f.DurationVar(&o.Scan, "queue-scan", federation.DefaultScan, "how often the outbound queue is searched for work without a worker here")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&pprofAddr, "pprof", "", "serve net/http/pprof on this loopback HOST:PORT (for profiling)")
	f.MarkHidden("pprof")
	return cmd
}

func devCACmd(stdout io.Writer) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "dev-ca --out DIR DOMAIN...",
		Short: "Make a development CA and a certificate for each domain",
		Long: "Writes DIR/ca.pem (creating the CA, with its key DIR/ca.key, unless it exists) and, for each\n" +
			"domain, DIR/DOMAIN.pem and DIR/DOMAIN.key. For local federations and tests only.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, domains []string) error {
			if out == "" {
				return fmt.Errorf("--out is required")
			}
			ca, err := devca.LoadOrCreate(out)
			if err != nil {
				return err
			}
			for _, d := range domains {
				if err := ca.Issue(out, d); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "%s %s\n", devca.DomainCertPath(out, d), devca.DomainKeyPath(out, d))
			}
			fmt.Fprintf(stdout, "%s\n", devca.CertPath(out))
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write the CA and certificates to")
	return cmd
}

func inviteCmd(stdout io.Writer) *cobra.Command {
	var dataDir, db string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "invite",
		Short: "Create a single-use invite token (for --registration invite)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tok, err := homeserver.CreateInvite(cmd.Context(), dataDir, db, ttl)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, tok)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", "./xchatd-data", "data directory of the server")
	cmd.Flags().DurationVar(&ttl, "ttl", 7*24*time.Hour, "how long the invite stays valid")
	cmd.Flags().StringVar(&db, "db", "", "PostgreSQL URL of the server's store, when it uses one")
	return cmd
}

func migrateCmd(stdout io.Writer) *cobra.Command {
	var db string
	cmd := &cobra.Command{
		Use:   "migrate --db URL",
		Short: "Create or upgrade the PostgreSQL schema (safe while servers run)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if db == "" {
				return fmt.Errorf("--db is required")
			}
			if err := homeserver.Migrate(cmd.Context(), db); err != nil {
				return err
			}
			fmt.Fprintln(stdout, "xchatd: schema is up to date")
			return nil
		},
	}
	cmd.Flags().StringVar(&db, "db", "", "PostgreSQL URL (postgres://...)")
	return cmd
}

func copyCmd(stdout io.Writer) *cobra.Command {
	var dataDir, db string
	cmd := &cobra.Command{
		Use:   "copy --data DIR --db URL",
		Short: "Copy the embedded store of a data directory into an empty, migrated PostgreSQL database",
		Long: "Copies accounts, devices, delivery policies, invites, key packages, waiting envelopes and the\n" +
			"outbound federation queue. Stop the server first; afterwards start it with --db URL and the same --data\n" +
			"directory (its key files stay there).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if db == "" {
				return fmt.Errorf("--db is required")
			}
			n, err := homeserver.CopyToPostgres(cmd.Context(), dataDir, db, func(n int) {
				fmt.Fprintf(stdout, "xchatd: %d records copied\n", n)
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "xchatd: copy complete, %d records\n", n)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", "./xchatd-data", "data directory of the embedded store")
	cmd.Flags().StringVar(&db, "db", "", "PostgreSQL URL (postgres://...)")
	return cmd
}
