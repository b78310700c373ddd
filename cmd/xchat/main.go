// Command xchat is the xchat reference client.
//
//	xchat register USER@DOMAIN --server HOST:PORT [--ca FILE] [--invite TOKEN]
//	xchat register --link CODE --server HOST:PORT [--ca FILE]
//	xchat send USER@DOMAIN TEXT | xchat send --group ID TEXT
//	xchat send --file PATH (USER@DOMAIN | --group ID) [--caption TEXT] [--json]
//	xchat recv [--json] [--wait DURATION]
//	xchat file get ID [--out PATH] [--json] | list [--json]
//	xchat whoami
//	xchat group create NAME MEMBER... | add ID MEMBER... | remove ID MEMBER | list
//	xchat device link [--wait DURATION] | remove DEVICE
//	xchat call start (USER@DOMAIN | --group ID) [--audio FILE.wav] [--video test[:WxH[@FPS]]] [--record FILE.wav] [--duration D] [--codec pcmu|l16] [--json]
//	xchat call answer [--wait D] [media flags as for start] | join --group ID [--wait D] [media flags]
//	xchat version
//
// Its state lives in --profile DIR; the default is the directory named by
// profileRule for the platform ($XDG_CONFIG_HOME/xchat on Linux). An error
// is one line on stderr, in the user's words, and exit status 1; -v adds
// the underlying error chain; 'xchat file get' exits with status 3 when the
// file it downloaded failed verification.
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/xchat-im/xchat/client"
	"github.com/xchat-im/xchat/cmd/internal/buildinfo"
	"github.com/xchat-im/xchat/cmd/internal/clierr"
	"github.com/xchat-im/xchat/spec/wire"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the exit status: 0, or
// after an error, printed as one line on stderr (two with -v: the
// explanation, then the error chain it explains), 1 or the status the
// command documents (clierr.ExitStatus).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr}
	root := a.newRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	if !a.running {
		err = clierr.Usage(cmd, err)
	} else {
		err = a.explain(err)
	}
	fmt.Fprintf(stderr, "xchat: %s\n", clierr.OneLine(err.Error()))
	if detail := errors.Unwrap(err); a.verbose && detail != nil {
		fmt.Fprintf(stderr, "xchat: detail: %s\n", clierr.OneLine(detail.Error()))
	}
	return clierr.ExitStatus(err)
}

// profileRule says where the default profile directory is on this
// platform: os.UserConfigDir followed by "xchat". Help texts show the rule,
// not the path of the machine that printed them.
func profileRule() string {
	switch runtime.GOOS {
	case "windows":
		return `%AppData%\xchat`
	case "darwin", "ios":
		return "$HOME/Library/Application Support/xchat"
	case "plan9":
		return "$home/lib/xchat"
	}
	return "$XDG_CONFIG_HOME/xchat, or $HOME/.config/xchat when XDG_CONFIG_HOME is unset"
}

// defaultProfile returns the default profile directory of this user.
func defaultProfile() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no default profile directory (%w): pass --profile DIR", err)
	}
	return filepath.Join(dir, "xchat"), nil
}

// app is the state of one xchat invocation.
type app struct {
	profile string // --profile, or resolved from the default by resolveProfile
	verbose bool
	stdout  io.Writer
	stderr  io.Writer // a transfer's progress bar, when it is a terminal

	// running is set once a command's RunE starts: an error before is a
	// usage error.
	running bool
	// What the command talked to, for explain: the homeserver address
	// and CA file in use, the profile's identity once read, the users
	// named on the command line, and when the connection was started.
	server, caFile string
	fromFlags      bool   // server and caFile come from register's flags
	invited        bool   // register --invite was given
	self           string // the profile's address
	device         uint32 // the device of this profile
	target         uint32 // the device a command names
	id             *client.Identity
	peers          []string
	dialed         time.Time
}

// resolveProfile fills in the default --profile.
func (a *app) resolveProfile() error {
	if a.profile != "" {
		return nil
	}
	dir, err := defaultProfile()
	a.profile = dir
	return err
}

// open opens the profile, which must exist, and reads its identity.
func (a *app) open(ctx context.Context) (*client.Profile, error) {
	if err := a.resolveProfile(); err != nil {
		return nil, err
	}
	p, err := client.OpenExistingProfile(a.profile)
	if err != nil {
		return nil, err
	}
	id, err := p.Identity(ctx)
	if err != nil {
		p.Close()
		return nil, err
	}
	a.id = id
	a.self, a.device, a.server, a.caFile = id.Address, id.Device, id.Server, id.CAFile
	return p, nil
}

func (a *app) newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "xchat",
		Short: "xchat reference client",
		Long: "xchat is the reference client of the xchat protocol. A profile directory holds one device\n" +
			"of one account: its keys, contacts, groups and received messages.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&a.profile, "profile", "", "profile `DIR` (identity, keys, messages); default: "+profileRule())
	root.PersistentFlags().BoolVarP(&a.verbose, "verbose", "v", false, "on an error, also print the underlying error chain")
	root.AddCommand(a.registerCmd(), a.sendCmd(), a.recvCmd(), a.fileCmd(), a.whoamiCmd(), a.unopenedCmd(), a.groupCmd(), a.deviceCmd(), a.callCmd(), versionCmd())
	clierr.TrackRun(root, &a.running)
	return root
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the source revision and the Go version of this binary",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), buildinfo.Read().Format("xchat"))
			return nil
		},
	}
}

// timeout bounds commands that make a few requests.
const timeout = 30 * time.Second

func (a *app) registerCmd() *cobra.Command {
	var o client.RegisterOptions
	cmd := &cobra.Command{
		Use:   "register USER@DOMAIN --server HOST:PORT | register --link CODE --server HOST:PORT",
		Short: "Create an account with this profile as its first device, or link this profile to an account as a new device",
		Long: "Creates an account USER@DOMAIN on the homeserver at --server with this profile as its first device.\n" +
			"With --link CODE (printed by 'xchat device link' on a device of an existing account) the profile\n" +
			"becomes a new device of that account instead, and USER@DOMAIN may be left out.\n\n" +
			"register first checks that the homeserver answers and that its certificate is trusted, so that\n" +
			"a wrong --server or --ca leaves the profile untouched. When registration is interrupted after\n" +
			"that, the profile keeps its new keys: the same command finishes it.",
		Args: func(cmd *cobra.Command, args []string) error {
			if o.Link != "" {
				if _, err := client.ParseLinkCode(o.Link); err != nil {
					return fmt.Errorf("--link: %w", err)
				}
				return cobra.MatchAll(cobra.MaximumNArgs(1), addressArgs(0))(cmd, args)
			}
			return cobra.MatchAll(cobra.ExactArgs(1), addressArgs(0))(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.Address = args[0]
			}
			a.self = o.Address
			if code, err := client.ParseLinkCode(o.Link); o.Link != "" && err == nil {
				a.self = code.Address
			}
			a.server, a.caFile, a.fromFlags, a.invited = o.Server, o.CAFile, true, o.Invite != ""
			if o.CAFile != "" {
				abs, err := checkCAFile(o.CAFile)
				if err != nil {
					return err
				}
				o.CAFile = abs
			}
			if err := a.resolveProfile(); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			_, domain := wire.SplitAddress(a.self)
			a.dialed = time.Now()
			if err := preflight(ctx, o.Server, domain, o.CAFile); err != nil {
				return err
			}
			p, err := client.OpenProfile(a.profile)
			if err != nil {
				return err
			}
			defer p.Close()
			a.dialed = time.Now()
			id, err := client.Register(ctx, p, o)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "registered %s (device %d)\n", id.Address, id.Device)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Server, "server", "", "homeserver address, `HOST:PORT` (UDP)")
	f.StringVar(&o.CAFile, "ca", "", "PEM `FILE` of a CA to trust for the homeserver (default: system roots)")
	f.StringVar(&o.Invite, "invite", "", "invite `TOKEN`, when the homeserver requires one")
	f.StringVar(&o.Link, "link", "", "`CODE` printed by 'xchat device link' on an existing device: join that account")
	cmd.MarkFlagRequired("server")
	cmd.MarkFlagsMutuallyExclusive("link", "invite")
	return cmd
}

// connect opens the profile and connects its device, within the timeout,
// for a command that then runs longer (receiving).
func (a *app) connect(ctx context.Context) (*client.Profile, *client.Client, error) {
	p, err := a.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	a.dialed = time.Now()
	c, err := client.Connect(cctx, p)
	if err != nil {
		p.Close()
		return nil, nil, err
	}
	return p, c, nil
}

// withClient connects the profile's device, processes what waits for it
// (so that it acts on current group states; the messages are kept for the
// next recv), runs f and disconnects.
func (a *app) withClient(ctx context.Context, f func(c *client.Client) error) error {
	p, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	a.dialed = time.Now()
	c, err := client.Connect(ctx, p)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.CatchUp(ctx); err != nil {
		return err
	}
	return f(c)
}

func (a *app) sendCmd() *cobra.Command {
	var group string
	var file client.SendFileOptions
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "send USER@DOMAIN TEXT | send --group ID TEXT | send --file PATH (USER@DOMAIN | --group ID) [--caption TEXT] [--json]",
		Short: "Send a text or a file in the one-to-one chat with a user (created if needed) or in a group; exits 0 once it is sent",
		Long: "Sends TEXT in the one-to-one chat with USER@DOMAIN (created if needed) or in the group --group ID;\n" +
			"it exits 0 once the homeserver stored the message durably.\n\n" +
			"With --file PATH it sends a file (at most 4 GiB) instead, with --caption TEXT if given: the file is\n" +
			"encrypted with a new key, uploaded to this profile's homeserver, and the message with its key goes\n" +
			"to every member of the chat; it exits 0 once the message is sent, when every recipient can download\n" +
			"the file ('xchat file get'). Interrupted (Ctrl-C, killed, the network lost), the same command\n" +
			"resumes the upload where the homeserver's copy ends, as long as the file is unchanged (the\n" +
			"homeserver keeps an unfinished upload 24 hours by default). On a terminal, stderr shows a\n" +
			"progress bar; with --json stdout gets one JSON object per line:\n" +
			"{\"event\":\"start\",\"resumed\":N,\"total\":N}, \"progress\" lines with done, total, resumed and rate\n" +
			"(bytes per second), then {\"event\":\"done\",...} with the file's id, name, size and media_type.\n" +
			"An upload counts the bytes of the encrypted file, padded to one of the sizes a homeserver stores\n" +
			"(at least 541 bytes, at most 5% more than the file).",
		Args: func(cmd *cobra.Command, args []string) error {
			if group != "" {
				if _, err := client.ParseGroupID(group); err != nil {
					return fmt.Errorf("--group: %w", err)
				}
			}
			if file.Path != "" {
				if err := sendFileArgs(group, args); err != nil {
					return err
				}
				return checkSendFile(file.Path)
			}
			for _, f := range []string{"caption", "json"} {
				if cmd.Flags().Changed(f) {
					return fmt.Errorf("--%s goes with --file", f)
				}
			}
			if group != "" {
				return cobra.ExactArgs(1)(cmd, args)
			}
			return cobra.MatchAll(cobra.ExactArgs(2), addressArgs(0))(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if group == "" {
				a.peers = args[:1]
			}
			if file.Path != "" {
				to, id := "", []byte(nil)
				if group == "" {
					to = args[0]
				} else {
					id, _ = client.ParseGroupID(group) // checked by Args
				}
				return a.sendFile(cmd.Context(), file, to, id, asJSON)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return a.withClient(ctx, func(c *client.Client) error {
				var err error
				if group == "" {
					err = c.Send(ctx, args[0], args[1])
				} else if id, perr := client.ParseGroupID(group); perr != nil {
					return perr
				} else {
					err = c.SendGroup(ctx, id, args[0])
				}
				if err != nil {
					return err
				}
				return printPending(ctx, cmd.OutOrStdout(), c)
			})
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "send to this group (an `ID` from 'xchat group list')")
	cmd.Flags().StringVar(&file.Path, "file", "", "send the file at `PATH` instead of a text")
	cmd.Flags().StringVar(&file.Caption, "caption", "", "with --file: a `TEXT` shown with the file")
	cmd.Flags().BoolVar(&asJSON, "json", false, "with --file: print progress and the result as JSON objects, one per line")
	return cmd
}

// printPending tells, after a send, which devices its copies still wait
// for (copies for the user's other devices whose homeserver refused them
// for a while).
func printPending(ctx context.Context, w io.Writer, c *client.Client) error {
	pending, err := c.Pending(ctx)
	if err != nil || len(pending) == 0 {
		return err
	}
	_, err = fmt.Fprintln(w, pendingNote(c.Identity().Address, pending))
	return err
}

// pendingNote says which devices copies wait for: "sent; copy for your
// device 2 pending (...)".
func pendingNote(own string, pending []wire.Mailbox) string {
	var names []string
	for _, mb := range pending {
		if mb.Address == own {
			names = append(names, fmt.Sprintf("your device %d", mb.Device))
		} else {
			names = append(names, fmt.Sprintf("%s device %d", mb.Address, mb.Device))
		}
	}
	copies := "copy"
	if len(names) > 1 {
		copies = "copies"
	}
	return fmt.Sprintf("sent; %s for %s pending (sent again at the next send or connection)", copies, strings.Join(names, ", "))
}

// jsonMessage is one line of recv --json.
type jsonMessage struct {
	ID         string    `json:"id"`
	From       string    `json:"from"`
	FromDevice uint32    `json:"from_device"`
	To         string    `json:"to"`
	Text       string    `json:"text"`
	Type       string    `json:"type,omitempty"` // absent for text
	Ref        string    `json:"ref,omitempty"`  // the message referred to
	MessageID  string    `json:"message_id"`
	Group      string    `json:"group,omitempty"` // group chats only
	GroupName  string    `json:"group_name,omitempty"`
	SentAt     string    `json:"sent_at"`
	ReceivedAt string    `json:"received_at"`
	Lane       string    `json:"lane"`
	File       *jsonFile `json:"file,omitempty"` // file messages only; Text is the caption
}

// contentTypes names content types in recv output (spec/10-content.md).
var contentTypes = map[int]string{1: "", 2: "reply", 3: "reaction", 4: "edit", 5: "delete", 6: "receipt", 7: "typing", 8: "file", 9: "call"}

func typeName(t int) string {
	if n, ok := contentTypes[t]; ok {
		return n
	}
	return fmt.Sprintf("unsupported(%d)", t)
}

// jsonNotice is a line of recv --json for an envelope that was not
// delivered to another domain.
type jsonNotice struct {
	Undeliverable string `json:"undeliverable"` // the envelope id
	To            string `json:"to"`
	Device        uint32 `json:"device"`
	Reason        string `json:"reason"`
}

func (a *app) recvCmd() *cobra.Command {
	var asJSON bool
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "recv [--json] [--wait DURATION]",
		Short: "Print waiting messages, then keep receiving until nothing new arrives for --wait",
		Long: "Prints the messages waiting for this device, then keeps receiving until nothing new arrives for\n" +
			"--wait. A file message shows the file's name, size and ID; recv does not download it: 'xchat file\n" +
			"get ID' does. With --json each message is one JSON object on a line; a file message has\n" +
			"\"type\":\"file\", the caption as \"text\" and a \"file\" object with id, name, size, media_type and\n" +
			"caption.\n\n" +
			"Calls show as lines of their own: an incoming call (ringing here), a missed call, one answered on\n" +
			"another device of the account, and hang-ups; with --json an object with \"event\" (incoming,\n" +
			"missed, answered_elsewhere, hung_up, ...), \"call\" (its identifier), from, device, media and\n" +
			"group. 'xchat call answer' answers a call.",
		Args: cobra.MatchAll(noArgs, nonNegative("--wait", &wait)),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			p, c, err := a.connect(ctx)
			if err != nil {
				return err
			}
			defer p.Close()
			defer c.Close()
			enc := json.NewEncoder(a.stdout)
			calls := &callOutput{w: a.stdout, asJSON: asJSON}
			show := func(m client.Message) {
				if asJSON {
					lane := "token"
					if m.RequestLane {
						lane = "request"
					}
					jm := jsonMessage{
						ID: hex.EncodeToString(m.ID[:]), From: m.From, FromDevice: m.FromDevice, To: m.To,
						Text: m.Text, Type: typeName(m.Type), MessageID: hex.EncodeToString(m.MessageID[:]),
						SentAt:     m.SentAt.UTC().Format(time.RFC3339Nano),
						ReceivedAt: m.ReceivedAt.UTC().Format(time.RFC3339Nano), Lane: lane, File: fileOf(&m),
					}
					if m.Ref != nil {
						jm.Ref = hex.EncodeToString(m.Ref)
					}
					if !m.Direct {
						jm.Group, jm.GroupName = hex.EncodeToString(m.Group), m.GroupName
					}
					enc.Encode(jm)
					return
				}
				where := ""
				if m.RequestLane {
					where = " (message request)"
				}
				if !m.Direct {
					where += fmt.Sprintf(" in %q (%x)", m.GroupName, m.Group)
				}
				text := m.Text
				if m.File != nil {
					text = fileLine(&m)
				} else if t := typeName(m.Type); t != "" {
					text = "[" + t + "] " + text
				}
				fmt.Fprintf(a.stdout, "%s %s%s: %s\n", m.SentAt.Local().Format("2006-01-02 15:04:05"), m.From, where, text)
			}
			// Messages stored earlier but not shown (a send processed
			// them) come first; a message is marked shown once printed.
			unshown, err := p.Unshown(ctx)
			if err != nil {
				return err
			}
			for i, m := range unshown {
				if m.Call != nil {
					// A call signal that arrived shows as OnCall reports
					// it; one stored earlier by another command is an
					// incoming, missed or answered call.
					if u, ok := storedCall(unshown, i, wire.Mailbox{Address: a.self, Device: a.device}, time.Now()); ok {
						calls.recvLine(u)
					}
				} else {
					show(m)
				}
				if err := p.MarkShown(ctx, m.ID); err != nil {
					return err
				}
			}
			return c.Receive(ctx, client.ReceiveOptions{
				Wait: wait,
				OnMessage: func(m client.Message) {
					if m.Call == nil {
						show(m)
					}
					p.MarkShown(ctx, m.ID)
				},
				OnCall: calls.recvLine,
				OnLinked: func(dev uint32) {
					fmt.Fprintf(a.stdout, "linked device %d\n", dev)
				},
				OnNotice: func(u client.Undeliverable) {
					if asJSON {
						enc.Encode(jsonNotice{Undeliverable: hex.EncodeToString(u.ID[:]), To: u.To, Device: u.Device, Reason: u.Reason.String()})
						return
					}
					fmt.Fprintf(a.stdout, "not delivered to %s (device %d): %s\n", u.To, u.Device, u.Reason)
				},
				OnDefer: func(id [16]byte, err error) {
					fmt.Fprintf(cmd.ErrOrStderr(), "xchat: envelope %x kept for later: %v\n", id, err)
				},
				OnDrop: func(id [16]byte, err error) {
					fmt.Fprintf(cmd.ErrOrStderr(), "xchat: dropped envelope %x: %v\n", id, err)
				},
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	cmd.Flags().DurationVar(&wait, "wait", 2*time.Second, "stop after this long without a new message")
	return cmd
}

func (a *app) unopenedCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "unopened",
		Short: "List messages this device received but could not open (their sender's domain did not answer)",
		Long: "Lists the envelopes that this device could not open because the key of another domain\n" +
			"could not be had (spec 7.16): still tried on later receives, or given up after 3 tries or\n" +
			"10 minutes and deleted from the homeserver unread. Records are kept 31 days.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer p.Close()
			rows, err := p.Unopened(cmd.Context())
			if err != nil {
				return err
			}
			for _, u := range rows {
				state := "still tried"
				if u.GivenUp {
					state = "given up"
				}
				domain := u.Domain
				if domain == "" {
					domain = "unknown domain"
				}
				fmt.Fprintf(a.stdout, "%x %s: %s, %d tries, first %s, last %s (%s)\n", u.ID, domain, state, u.Tries,
					u.FirstSeen.UTC().Format(time.RFC3339), u.LastSeen.UTC().Format(time.RFC3339), u.Reason)
			}
			return nil
		},
	}
}

func (a *app) whoamiCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Print this profile's address, device and homeserver",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			p.Close()
			id := a.id
			fmt.Fprintf(a.stdout, "%s device %d on %s\n", id.Address, id.Device, id.Server)
			return nil
		},
	}
}
