// Command xchatd is the xchat homeserver.
//
//	xchatd serve [--domain D] [--listen ADDR] [--data DIR] [--db URL] [--tls-cert F --tls-key F]
//	             [--registration open|invite|closed] [--max-connections N] [--log-level LEVEL]
//	             [--peer DOMAIN=HOST:PORT]... [--trust-ca FILE]... [--allow-domain D]... [--deny-domain D]...
//	             [--relay-lease DURATION] [--queue-scan DURATION]
//	xchatd dev-ca --out DIR DOMAIN...
//	xchatd invite [--data DIR | --db URL] [--ttl DURATION]
//	xchatd migrate --db URL
//	xchatd copy --data DIR --db URL
//	xchatd version
//
// An error is one line on stderr and exit status 1; a usage error names
// the help to read. Unlike xchat's, other errors keep their whole chain,
// with advice added for the common start-up failures: the reader is an
// operator. serve logs with log/slog to stderr (--log-level) and
// prints the lines an operator reads (certificate paths, the address it
// serves on) to stdout.
package main

import (
	"context"
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

	"github.com/xchat-im/xchat/cmd/internal/buildinfo"
	"github.com/xchat-im/xchat/cmd/internal/clierr"
	"github.com/xchat-im/xchat/server"
	// Named so: the package main tests have a type daemon.
	homeserver "github.com/xchat-im/xchat/server/daemon"
	"github.com/xchat-im/xchat/server/devca"
	"github.com/xchat-im/xchat/spec/wire"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the exit status: 0, or
// 1 after an error, printed as one line on stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var started bool
	root := newRoot(stdout, stderr)
	clierr.TrackRun(root, &started)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	if !started {
		err = clierr.Usage(cmd, err)
	} else {
		err = explain(err)
	}
	fmt.Fprintf(stderr, "xchatd: %s\n", clierr.OneLine(err.Error()))
	return 1
}

// explain adds what to do to the start-up failures an operator meets
// most; the error itself stays in the message.
func explain(err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return clierr.Explain(err, "%v: another process (another xchatd?) uses this address; stop it or choose another --listen", err)
	}
	return err
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
	root.AddCommand(serveCmd(stdout, stderr), devCACmd(stdout), inviteCmd(stdout), migrateCmd(stdout), copyCmd(stdout), versionCmd(stdout))
	return root
}

func versionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the source revision and the Go version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintln(stdout, buildinfo.Read().Format("xchatd"))
			return nil
		},
	}
}

// checkDomain explains why d is not a domain name xchat accepts.
func checkDomain(d string) error {
	err := wire.ValidateDomain(d)
	var we *wire.Error
	if errors.As(err, &we) {
		return clierr.Explain(err, "%s", strings.TrimPrefix(we.Message, fmt.Sprintf("domain %q: ", d)))
	}
	return err
}

func serveCmd(stdout, stderr io.Writer) *cobra.Command {
	var o homeserver.Config
	var pprofAddr string
	var level slog.Level
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the homeserver until SIGINT or SIGTERM",
		Long: "Runs the homeserver of --domain on the UDP address --listen until SIGINT or SIGTERM, then stops\n" +
			"gracefully. Once it accepts connections it prints a line 'xchatd: serving DOMAIN on ADDR (udp), ...'\n" +
			"to stdout (with --listen HOST:0, ADDR is the port the system chose).",
		Args: cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error {
			if err := checkDomain(o.Domain); err != nil {
				return fmt.Errorf("--domain %q: %w", o.Domain, err)
			}
			for _, d := range append(append([]string{}, o.AllowDomains...), o.DenyDomains...) {
				if err := checkDomain(d); err != nil {
					return fmt.Errorf("--allow-domain/--deny-domain %q: %w", d, err)
				}
			}
			if o.MaxConnections < 1 {
				return fmt.Errorf("--max-connections %d: want at least 1", o.MaxConnections)
			}
			if o.Lease <= 0 || o.Scan <= 0 {
				return fmt.Errorf("--relay-lease %s, --queue-scan %s: want positive durations", o.Lease, o.Scan)
			}
			if o.Limits.UploadLifetime <= 0 {
				return fmt.Errorf("--upload-lifetime %s: want a positive duration", o.Limits.UploadLifetime)
			}
			if o.Limits.BlobRetention < wire.Retention {
				return fmt.Errorf("--blob-retention %s: want at least the mailbox retention, %s", o.Limits.BlobRetention, wire.Retention)
			}
			if o.Limits.MaxUnfinished == 0 {
				return fmt.Errorf("--max-unfinished-uploads 0: want at least 1, or -1 for no limit")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
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
	o.Registration = server.RegistrationOpen
	f.Var(registrationFlag{&o.Registration}, "registration", "who may register: open, invite or closed")
	f.IntVar(&o.MaxConnections, "max-connections", server.DefaultMaxConnections, "concurrent client connections; more are refused")
	f.Var(peersFlag{&o.Peers}, "peer", "static federation peer, overriding DNS (repeatable)")
	f.StringArrayVar(&o.TrustCAs, "trust-ca", nil, "PEM file of extra root CAs for peers' certificates, added to the system roots (repeatable)")
	f.StringArrayVar(&o.AllowDomains, "allow-domain", nil, "federate only with these domains (repeatable; default: any)")
	f.StringArrayVar(&o.DenyDomains, "deny-domain", nil, "never federate with this domain (repeatable)")
	f.DurationVar(&o.Lease, "relay-lease", homeserver.DefaultLease, "how long a relay worker holds the envelopes it claimed; a process that dies leaves them to others after this")
	f.DurationVar(&o.Scan, "queue-scan", homeserver.DefaultScan, "how often the outbound queue is searched for work without a worker here")
	o.Limits = server.Limits{
		ConnsPerAddress: server.DefaultConnsPerAddress, ConnsPerAccount: server.DefaultConnsPerAccount,
		AuthFailuresPerAddress: server.DefaultAuthFailuresPerAddress, AuthFailuresPerAccount: server.DefaultAuthFailuresPerAccount,
		ClaimsPerRequester: server.DefaultClaimsPerRequester, ClaimsPerTarget: server.DefaultClaimsPerTarget,
		LookupMisses: server.DefaultLookupMisses, Registrations: server.DefaultRegistrations,
		BlobQuota: server.DefaultBlobQuota, MaxUnfinished: server.DefaultMaxUnfinished,
		UploadLifetime: server.DefaultUploadLifetime, BlobRetention: server.DefaultBlobRetention,
		FedBlobRate:    server.DefaultFedBlobRate,
		MaxCallMembers: server.DefaultMaxCallMembers, MaxCallRooms: server.DefaultMaxCallRooms,
	}
	f.IntVar(&o.Limits.ConnsPerAddress, "max-conns-per-address", o.Limits.ConnsPerAddress, "concurrent client connections from one IPv4 address or IPv6 /64; -1: no limit")
	f.IntVar(&o.Limits.ConnsPerAccount, "max-conns-per-account", o.Limits.ConnsPerAccount, "concurrent authenticated connections of one account, all its devices together; -1: no limit")
	f.Var(rateFlag{&o.Limits.AuthFailuresPerAddress}, "auth-failures-per-address", "failed authentications from one address: BURST/INTERVAL, or none")
	f.Var(rateFlag{&o.Limits.AuthFailuresPerAccount}, "auth-failures-per-account", "failed authentications naming one account: BURST/INTERVAL, or none")
	f.Var(rateFlag{&o.Limits.ClaimsPerRequester}, "claims-per-account", "one-time key packages one account may claim; past it, claims get the last-resort package")
	f.Var(rateFlag{&o.Limits.ClaimsPerTarget}, "claims-per-device", "one-time key packages claimed of one device; past it, claims get the last-resort package")
	f.Var(rateFlag{&o.Limits.LookupMisses}, "lookup-misses-per-account", "lookups of unknown accounts or devices by one account (bounds enumeration)")
	f.Var(rateFlag{&o.Limits.Registrations}, "registrations-per-address", "register attempts from one address, announced in server-info")
	f.Var(sizeFlag{&o.Limits.BlobQuota}, "blob-quota", "bytes of files one account may store, unfinished uploads counted at full size: SIZE, or none")
	f.IntVar(&o.Limits.MaxUnfinished, "max-unfinished-uploads", o.Limits.MaxUnfinished, "unfinished file uploads of one account; -1: no limit")
	f.DurationVar(&o.Limits.UploadLifetime, "upload-lifetime", o.Limits.UploadLifetime, "how long an unfinished file upload is kept")
	f.DurationVar(&o.Limits.BlobRetention, "blob-retention", o.Limits.BlobRetention, "how long a file is kept once uploaded; at least the mailbox retention (720h)")
	f.Var(sizeFlag{&o.Limits.FedBlobRate}, "fed-blob-rate", "file bytes per second the servers of one other domain may read (burst: 4 s worth): SIZE, or none")
	f.IntVar(&o.Limits.MaxCallMembers, "max-call-members", o.Limits.MaxCallMembers, "devices of this server in one call room (server-info key 16); -1: do not relay calls")
	f.IntVar(&o.Limits.MaxCallRooms, "max-call-rooms", o.Limits.MaxCallRooms, "call rooms the devices of one account are in at once (server-info key 17); -1: no limit")
	f.Var(levelFlag{&level}, "log-level", "log level: debug, info, warn or error")
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
		Args: cobra.MatchAll(cobra.MinimumNArgs(1), func(_ *cobra.Command, domains []string) error {
			for _, d := range domains {
				if err := checkDomain(d); err != nil {
					return fmt.Errorf("%q is not a domain: %w", d, err)
				}
			}
			return nil
		}),
		RunE: func(cmd *cobra.Command, domains []string) error {
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
	cmd.Flags().StringVar(&out, "out", "", "`DIR`ectory to write the CA and certificates to")
	cmd.MarkFlagRequired("out")
	return cmd
}

func inviteCmd(stdout io.Writer) *cobra.Command {
	var dataDir, db string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "invite",
		Short: "Create a single-use invite token (for --registration invite)",
		Long: "Prints a new single-use invite token to stdout; a user registers with it by\n" +
			"'xchat register USER@DOMAIN --server HOST:PORT --invite TOKEN'. It may run while the server runs.",
		Args: cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error {
			if ttl <= 0 {
				return fmt.Errorf("--ttl %s: want a positive duration", ttl)
			}
			return nil
		},
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
			if err := homeserver.Migrate(cmd.Context(), db); err != nil {
				return err
			}
			fmt.Fprintln(stdout, "xchatd: schema is up to date")
			return nil
		},
	}
	cmd.Flags().StringVar(&db, "db", "", "PostgreSQL `URL` (postgres://...)")
	cmd.MarkFlagRequired("db")
	return cmd
}

func copyCmd(stdout io.Writer) *cobra.Command {
	var dataDir, db string
	cmd := &cobra.Command{
		Use:   "copy --data DIR --db URL",
		Short: "Copy the embedded store of a data directory into an empty, migrated PostgreSQL database",
		Long: "Copies accounts, devices, delivery policies, invites, key packages, waiting envelopes, the\n" +
			"outbound federation queue and uploaded files (not unfinished uploads). Stop the server first;\n" +
			"afterwards start it with --db URL and the same --data directory (its key files stay there).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, blobs, err := homeserver.CopyToPostgres(cmd.Context(), dataDir, db, func(n int) {
				fmt.Fprintf(stdout, "xchatd: %d records copied\n", n)
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "xchatd: copy complete, %d records, %d files\n", n, blobs)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", "./xchatd-data", "data directory of the embedded store")
	cmd.Flags().StringVar(&db, "db", "", "PostgreSQL `URL` (postgres://...)")
	cmd.MarkFlagRequired("db")
	return cmd
}
