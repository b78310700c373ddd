package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/xchat-im/xchat/client/bench"
)

func filesCmd(stdout, stderr io.Writer) *cobra.Command {
	o := bench.DefaultFilesOptions()
	var sizes, minBytes, store, jsonFile, cpuProfile string
	cmd := &cobra.Command{
		Use:   "files",
		Short: "Upload and download throughput of files, on one server and over federation, against raw QUIC",
		Long: "Starts two homeservers, a.bench.test and b.bench.test, federated with each other, and for each of\n" +
			"--sizes uploads a file as a client of a.bench.test, downloads it as a client of a.bench.test (one\n" +
			"server) and as a client of b.bench.test through its own server, which fetches the blob from\n" +
			"a.bench.test over federation. As the ceiling, the same byte counts go up and down one raw QUIC\n" +
			"stream between this process and a peer process (the same QUIC library, TLS 1.3 with the same\n" +
			"certificate, on loopback). Small files are moved several times (--min-bytes).\n\n" +
			"With --client library (the default) the reference client moves the files: the sender sends each\n" +
			"to a group of the two downloaders (SendGroupFile: encryption and upload) and each downloads it\n" +
			"(DownloadFile: download, decryption, verification, the plaintext written to a file). With\n" +
			"--client wire the bench sends the blob requests itself (random blobs, --parallel in flight): the\n" +
			"servers and the transport without the client's encryption.\n\n" +
			"The servers' memory is sampled throughout (RSS from /proc, Go heap from their pprof endpoints):\n" +
			"it must not grow with the file size.\n\n" +
			"The table goes to stdout, and with --json FILE the result as JSON. The exit status is 2 when a\n" +
			"transfer failed.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if o.Sizes, err = bench.ParseSizes(sizes); err != nil {
				return fmt.Errorf("--sizes: %w", err)
			}
			n, err := bench.ParseSizes(minBytes)
			if err != nil || len(n) != 1 {
				return fmt.Errorf("--min-bytes %q: want one size", minBytes)
			}
			o.MinBytes = n[0]
			if o.DB, err = storeDB(store, o.DB); err != nil {
				return err
			}
			if exe, err := os.Executable(); err == nil {
				o.RawPeer = []string{exe, "raw-quic-peer"}
			}
			o.Progress = stderr
			stop, err := startCPUProfile(cpuProfile)
			if err != nil {
				return err
			}
			defer stop()
			res, err := bench.Files(cmd.Context(), o)
			if err != nil {
				return err
			}
			return report(stdout, jsonFile, res)
		},
	}
	f := cmd.Flags()
	f.StringVar(&sizes, "sizes", "1MiB,64MiB", "plaintext file sizes, comma-separated, with unit KiB, MiB or GiB")
	f.StringVar(&o.Client, "client", o.Client, "library (the reference client's SendGroupFile and DownloadFile, with encryption) or wire (blob requests of random blobs)")
	f.IntVar(&o.Parallel, "parallel", o.Parallel, "with --client wire: part requests in flight per upload or download")
	f.StringVar(&minBytes, "min-bytes", "16MiB", "bytes each size moves at least per path and direction (a small file is moved up to 16 times)")
	f.DurationVar(&o.SampleEvery, "sample-every", o.SampleEvery, "how often the processes' memory is sampled")
	f.StringVar(&store, "store", "", "sqlite (embedded, the default) or postgres (needs --db or TEST_DATABASE_URL)")
	f.StringVar(&o.DB, "db", "", "PostgreSQL URL: the servers store in fresh schemas of this database (implies --store postgres)")
	f.StringVar(&o.Xchatd, "xchatd", "", "xchatd binary to start (default: next to xchat-bench, else built with go build)")
	f.StringArrayVar(&o.ServerArgs, "server-arg", nil, "extra argument to each started xchatd serve (repeatable)")
	f.StringVar(&jsonFile, "json", "", "also write the result as JSON to FILE")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write the load generator's own CPU profile to FILE")
	return cmd
}

// storeDB checks --store against --db and returns the PostgreSQL URL to
// use, or "" for the embedded store.
func storeDB(store, db string) (string, error) {
	switch store {
	case "sqlite":
		if db != "" {
			return "", errors.New("--store sqlite with --db: pick one")
		}
	case "postgres":
		if db == "" {
			db = os.Getenv("TEST_DATABASE_URL")
		}
		if db == "" {
			return "", errors.New("--store postgres needs --db URL (or TEST_DATABASE_URL)")
		}
	case "":
	default:
		return "", fmt.Errorf("--store %q: want sqlite or postgres", store)
	}
	return db, nil
}
