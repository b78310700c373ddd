package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/xchat-im/xchat/client/bench"
)

func callsCmd(stdout, stderr io.Writer) *cobra.Command {
	o := bench.DefaultCallsOptions()
	var paths, video, jsonFile, cpuProfile string
	var inProcess bool
	cmd := &cobra.Command{
		Use:   "calls",
		Short: "Concurrent audio calls and a group call with video through the call relays, against a bare relay",
		Long: "Measures the media relays of calls (spec/12-calls.md sections 12.3 to 12.5) on the paths of --paths:\n" +
			"  relay         one-to-one audio calls through a bare relay: a plain quic-go DATAGRAM forwarder with\n" +
			"                nothing but rooms and a bounded queue per member (the baseline), in a child process\n" +
			"  server        one-to-one audio calls through one homeserver (a child xchatd)\n" +
			"  federation    one-to-one audio calls between a device of a.bench.test and one of b.bench.test,\n" +
			"                through both homeservers and their federation link\n" +
			"  group-relay   one group call of --group-size participants with video, through the bare relay\n" +
			"  group-server  the same group call through one homeserver\n" +
			"Each device registers (homeservers), joins its call's room (call-join with a random room and token)\n" +
			"and sends media packets in QUIC DATAGRAMs: --frame-rate audio frames a second of --audio-bytes (one\n" +
			"packet a frame), and in the group call video frames of the test pattern split into packets. A\n" +
			"packet's data is its send time and filler, not SFrame ciphertext: relays do not decrypt, so the\n" +
			"bench's receivers read the time and measure sender-to-receiver latency on loopback.\n\n" +
			"--streams is the sending devices of a one-to-one path (two a call, each receiving the other). After\n" +
			"every device heard its peer and --warmup, the figures are taken over --duration: packets sent and\n" +
			"forwarded a second, loss, latency p50 and p99, the relaying processes' CPU (user and system time of\n" +
			"the child processes) per stream, and each figure over the bare relay's at the same stream count.\n" +
			"With --search, each one-to-one path is searched instead for the largest stream count without loss\n" +
			"(from --search-start, doubling up to --search-max, then bisecting; --search-duration a step).\n\n" +
			"The table goes to stdout, and with --json FILE the result as JSON. The exit status is 2 when the run\n" +
			"counted an error (a lost connection, a send error, a packet of another room); loss is a figure.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Paths = bench.ParseCallsPaths(paths)
			if video != "" {
				if _, err := fmt.Sscanf(strings.ToLower(video), "%dx%d", &o.VideoWidth, &o.VideoHeight); err != nil {
					return fmt.Errorf("--video %q: want WIDTHxHEIGHT", video)
				}
			}
			if exe, err := os.Executable(); err == nil && !inProcess {
				o.Relay = []string{exe, "calls-relay"}
			}
			o.Progress = stderr
			stop, err := startCPUProfile(cpuProfile)
			if err != nil {
				return err
			}
			defer stop()
			res, err := bench.Calls(cmd.Context(), o)
			if err != nil {
				return err
			}
			return report(stdout, jsonFile, res)
		},
	}
	f := cmd.Flags()
	f.StringVar(&paths, "paths", strings.Join([]string{bench.CallsRelay, bench.CallsServer, bench.CallsFederation, bench.CallsGroupRelay, bench.CallsGroupServer}, ","),
		"paths to measure, comma-separated: relay, server, federation, group-relay, group-server")
	f.IntVar(&o.Streams, "streams", o.Streams, "sending devices of each one-to-one path (an even number: two a call)")
	f.DurationVar(&o.Duration, "duration", o.Duration, "how long the figures are taken over")
	f.DurationVar(&o.Warmup, "warmup", o.Warmup, "how long the devices send before the figures are taken (after every device heard its peer)")
	f.DurationVar(&o.Drain, "drain", o.Drain, "how long to wait at most for packets in flight after the senders stop")
	f.IntVar(&o.FrameRate, "frame-rate", o.FrameRate, "audio frames a second of each sending device, one packet a frame")
	f.IntVar(&o.AudioBytes, "audio-bytes", o.AudioBytes, "data bytes of an audio packet after its 14-byte header (160: a pcmu frame; about 194 with its media-frame encoding and SFrame)")
	f.IntVar(&o.GroupSize, "group-size", o.GroupSize, "participants of the group call, each sending audio")
	f.IntVar(&o.VideoSenders, "video-senders", o.VideoSenders, "participants of the group call that also send video (-1: all)")
	f.StringVar(&video, "video", fmt.Sprintf("%dx%d", o.VideoWidth, o.VideoHeight), "size of the test pattern video, WIDTHxHEIGHT")
	f.IntVar(&o.VideoFPS, "video-fps", o.VideoFPS, "video frames a second")
	f.BoolVar(&o.Search, "search", false, "search each one-to-one path for the largest stream count without loss")
	f.IntVar(&o.SearchStart, "search-start", o.SearchStart, "with --search: the first stream count tried")
	f.IntVar(&o.SearchMax, "search-max", o.SearchMax, "with --search: the largest stream count tried")
	f.DurationVar(&o.SearchDuration, "search-duration", o.SearchDuration, "with --search: the measured part of each step")
	f.DurationVar(&o.SearchP99, "search-p99", 0, "with --search: a step also needs a p99 latency at most this (0: loss alone decides)")
	f.IntVar(&o.ConnectConcurrency, "connect-concurrency", o.ConnectConcurrency, "devices connecting at once")
	f.BoolVar(&inProcess, "relay-in-process", false, "run the bare relay in this process instead of a child process (its CPU is then this process's)")
	f.StringVar(&o.Xchatd, "xchatd", "", "xchatd binary to start (default: next to xchat-bench, else built with go build)")
	f.StringArrayVar(&o.ServerArgs, "server-arg", nil, "extra argument to each started xchatd serve (repeatable)")
	f.StringVar(&jsonFile, "json", "", "also write the result as JSON to FILE")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write the load generator's own CPU profile to FILE")
	return cmd
}
