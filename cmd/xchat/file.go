package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/quic-go/quic-go"
	"github.com/spf13/cobra"

	"github.com/xchat-im/xchat/client"
	"github.com/xchat-im/xchat/client/filecrypt"
	"github.com/xchat-im/xchat/cmd/internal/clierr"
	"github.com/xchat-im/xchat/cmd/internal/progress"
	"github.com/xchat-im/xchat/spec/wire"
)

// Files: send --file (here sendFile), the file object of recv --json, and
// the file command (get, list).

// checkSendFile checks, before send --file starts, that path is a regular
// file that can be read and is not larger than a file may be. It opens
// only a regular file (opening a named pipe would wait for a writer).
func checkSendFile(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("--file %s: no such file", path)
	case err != nil:
		return fmt.Errorf("--file: %w", err)
	case fi.IsDir():
		return fmt.Errorf("--file %s is a directory: send a file (an archive of the directory, say)", path)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("--file %s is not a regular file (a resumable upload reads it again)", path)
	case fi.Size() > wire.MaxFileSize:
		return fmt.Errorf("--file %s has %d bytes, more than the %d (%s) a file may have", path,
			fi.Size(), wire.MaxFileSize, progress.Bytes(wire.MaxFileSize))
	}
	f, err := os.Open(path)
	switch {
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("--file %s: permission denied", path)
	case err != nil:
		return fmt.Errorf("--file: %w", err)
	}
	return f.Close()
}

// sendFileArgs checks the arguments of send --file: one address, or none
// with --group.
func sendFileArgs(group string, args []string) error {
	switch {
	case group != "" && len(args) > 0:
		return fmt.Errorf("a file goes to USER@DOMAIN or to --group ID, not both (got %q and --group)", args[0])
	case group == "" && len(args) == 0:
		return errors.New("send --file needs USER@DOMAIN or --group ID")
	case len(args) > 1:
		return fmt.Errorf("send --file takes one USER@DOMAIN, got %d arguments (the text goes in --caption)", len(args))
	case group != "":
		return nil
	}
	return checkAddress(args[0])
}

// jsonSent is the members that the done line of send --file --json adds.
type jsonSent struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Size      uint64 `json:"size"`
	MediaType string `json:"media_type"`
	To        string `json:"to,omitempty"`
	Group     string `json:"group,omitempty"`
}

// sendFile uploads the file (resuming an interrupted upload of it) and
// sends the reference to the user to, or to group when to is "".
func (a *app) sendFile(ctx context.Context, o client.SendFileOptions, to string, group []byte, asJSON bool) error {
	fi, err := os.Stat(o.Path)
	if err != nil {
		return err
	}
	return a.withLongClient(ctx, func(c *client.Client) error {
		m := a.meter(asJSON, fi.Name())
		o.Progress = m.observe
		var f *client.File
		var err error
		if group == nil {
			f, err = c.SendFile(ctx, to, o)
		} else {
			f, err = c.SendGroupFile(ctx, group, o)
		}
		if err != nil {
			m.Abort()
			if f != nil {
				// Uploaded, and the message queued in the profile: it
				// leaves with the next send or connection.
				return clierr.Explain(err, "%s is uploaded but its message was not sent now (%v): it stays queued and leaves with this profile's next send or 'xchat recv'; do not send the file again",
					f.Ref.Name, a.explain(err))
			}
			if now, serr := os.Stat(o.Path); serr == nil && m.started && (now.Size() != fi.Size() || !now.ModTime().Equal(fi.ModTime())) {
				return clierr.Explain(err, "%s changed while it was sent (after %s): the same command sends it as it is now", o.Path, m.got())
			}
			return a.stopped(err, "upload", m)
		}
		total := int64(f.Ref.BlobSize()) // an upload counts blob bytes
		m.startOnce(total, total)
		sent := jsonSent{ID: f.ID, Name: f.Ref.Name, Size: f.Ref.Size, MediaType: f.Ref.MediaType, To: to}
		if group != nil {
			sent.Group = hex.EncodeToString(group)
		}
		if err := m.Finish(sent); err != nil {
			return err
		}
		if asJSON {
			// stdout holds JSON lines only.
			return printPending(ctx, prefixed{a.stderr}, c)
		}
		return printPending(ctx, a.stdout, c)
	})
}

// prefixed writes lines to an error stream after "xchat: ".
type prefixed struct{ w io.Writer }

func (p prefixed) Write(b []byte) (int, error) {
	if _, err := io.WriteString(p.w, "xchat: "); err != nil {
		return 0, err
	}
	return p.w.Write(b)
}

// withLongClient is withClient for a command that runs as long as its
// transfer: connecting and catching up are bounded by the timeout, f is
// not.
func (a *app) withLongClient(ctx context.Context, f func(c *client.Client) error) error {
	p, c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	err = c.CatchUp(cctx)
	cancel()
	if err != nil {
		return err
	}
	return f(c)
}

// meter is the progress display of a transfer: JSON lines on stdout with
// --json, else a bar on stderr when it is a terminal, else nothing.
type meter struct {
	*progress.Meter
	started bool
	last    client.FileProgress
}

func (a *app) meter(asJSON bool, label string) *meter {
	w, mode := a.stdout, progress.JSON
	if !asJSON {
		w, mode = a.stderr, progress.Off
		if f, ok := a.stderr.(*os.File); ok {
			mode = progress.ModeFor(false, f)
		}
	}
	return &meter{Meter: progress.New(w, mode, label)}
}

// observe is the client library's progress callback: the first call
// starts the display with the offset the transfer resumed from.
func (m *meter) observe(p client.FileProgress) {
	m.startOnce(p.Resumed, p.Total)
	m.last = p
	m.Update(p.Done)
}

// got says how far the transfer got: "12.0 MiB of 64.0 MiB".
func (m *meter) got() string {
	return fmt.Sprintf("%s of %s", progress.Bytes(m.last.Done), progress.Bytes(m.last.Total))
}

// startOnce starts the display, unless a progress callback did.
func (m *meter) startOnce(resumed, total int64) {
	if !m.started {
		m.started = true
		m.Start(resumed, total)
	}
}

// stopped explains a transfer that stopped after it started (Ctrl-C,
// SIGTERM, the network lost): why, how far it got, and that the same
// command resumes it. An error before the transfer started is left to
// explain.
func (a *app) stopped(err error, what string, m *meter) error {
	if !m.started {
		return err
	}
	got := m.got()
	var idle *quic.IdleTimeoutError
	switch {
	case errors.Is(err, context.Canceled):
		return clierr.Explain(err, "interrupted after %s: the same command resumes the %s", got, what)
	case errors.As(err, &idle):
		return clierr.Explain(err, "the homeserver at %s stopped answering after %s: the same command resumes the %s", a.server, got, what)
	}
	return clierr.Explain(err, "the %s stopped after %s (the same command resumes it): %s", what, got, clierr.OneLine(a.explain(err).Error()))
}

// jsonFile is the file object of recv --json.
type jsonFile struct {
	ID        string `json:"id"` // for 'xchat file get'
	Name      string `json:"name"`
	Size      uint64 `json:"size"`
	MediaType string `json:"media_type"`
	Caption   string `json:"caption"`
}

// fileOf returns the file object of a received file message.
func fileOf(m *client.Message) *jsonFile {
	if m.File == nil {
		return nil
	}
	return &jsonFile{ID: client.FileID(m.File), Name: m.File.Name, Size: m.File.Size, MediaType: m.File.MediaType, Caption: m.Text}
}

// fileLine is what plain recv prints for a file message after the sender.
func fileLine(m *client.Message) string {
	f := m.File
	caption := ""
	if m.Text != "" {
		caption = " " + m.Text
	}
	return fmt.Sprintf("[file] %s (%s, %s)%s; download: xchat file get %s", shownName(f.Name), progress.Bytes(int64(f.Size)),
		shownName(f.MediaType), caption, client.FileID(f))
}

func (a *app) fileCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "file",
		Short: "Download and list the files of this profile's chats (send one with 'xchat send --file')",
	}
	cmd.AddCommand(a.fileGetCmd(), a.fileListCmd())
	return cmd
}

// fileIDArg checks that the argument at position i is a file ID.
func fileIDArg(i int) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if i < len(args) {
			if b, err := hex.DecodeString(args[i]); err != nil || len(b) != wire.BlobIDLen {
				return fmt.Errorf("%q is not a file ID (32 hexadecimal digits; 'xchat file list' shows them)", args[i])
			}
		}
		return nil
	}
}

// jsonSaved is the members that the done line of file get --json adds.
type jsonSaved struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Size uint64 `json:"size"`
	Path string `json:"path"`
}

func (a *app) fileGetCmd() *cobra.Command {
	var out string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "get ID [--out PATH] [--json]",
		Short: "Download a file of a received message, decrypt and verify it; prints where it was saved",
		Long: "Downloads the file ID (from 'xchat recv' or 'xchat file list') through this profile's homeserver,\n" +
			"decrypts it and verifies it against the hash in the message. It is written to a temporary file\n" +
			"(.NAME.xchat-download next to the output) that becomes the output only once it is complete and\n" +
			"verified; an existing output is never overwritten. Interrupted, the same command resumes from the\n" +
			"verified part already downloaded.\n\n" +
			"The output is --out PATH, or the file's name inside --out when PATH is a directory, or the file's\n" +
			"name in the current directory. stdout gets the output's path (characters that change how text is\n" +
			"displayed, such as U+202E, shown as \\u escapes), or with --json one JSON object per line:\n" +
			"{\"event\":\"start\",\"resumed\":N,\"total\":N} (resumed: the bytes an earlier run downloaded), then\n" +
			"\"progress\" lines, then {\"event\":\"done\",...,\"path\":PATH}. On a terminal, stderr shows a progress\n" +
			"bar.\n\n" +
			"Exit status: 0 when the file is saved; 3 when it failed verification (changed or truncated on the\n" +
			"server or on its way: nothing is saved, and downloading again does not help); 1 after any other\n" +
			"error (the same command resumes).",
		Args: cobra.MatchAll(cobra.ExactArgs(1), fileIDArg(0)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer p.Close()
			f, err := p.File(ctx, args[0])
			if err != nil {
				return a.unknownFile(err, args[0])
			}
			a.peers = []string{f.From}
			a.dialed = time.Now()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			c, err := client.Connect(cctx, p)
			cancel()
			if err != nil {
				return err
			}
			defer c.Close()
			m := a.meter(asJSON, shownName(f.Ref.Name))
			path, resumed, err := c.DownloadFile(ctx, f.ID, client.DownloadOptions{Out: out, Progress: m.observe})
			if err != nil {
				m.Abort()
				return a.downloadFailed(err, f, m)
			}
			m.startOnce(resumed, int64(f.Ref.Size))
			if asJSON {
				return m.Finish(jsonSaved{ID: f.ID, Name: f.Ref.Name, Size: f.Ref.Size, Path: path})
			}
			if err := m.Finish(nil); err != nil {
				return err
			}
			_, err = fmt.Fprintln(a.stdout, shownName(path))
			return err
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "save to `PATH` (a directory: the file's name inside it)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print progress and the result as JSON objects, one per line")
	return cmd
}

// unknownFile explains that the profile has no file id.
func (a *app) unknownFile(err error, id string) error {
	if errors.Is(err, client.ErrUnknownFile) {
		return clierr.Explain(err, "no file %s in this profile: 'xchat file list' shows the files of its chats ('xchat recv' receives new ones)", id)
	}
	return err
}

// downloadFailed explains why file get failed.
func (a *app) downloadFailed(err error, f *client.File, m *meter) error {
	switch {
	case errors.Is(err, client.ErrFileCorrupt):
		return clierr.Explain(clierr.WithStatus(clierr.ExitCorrupt, err),
			"the file %s from %s failed verification: %s; nothing was saved (downloading it again does not help)",
			shownName(f.Ref.Name), f.From, corruptReason(err))
	case errors.Is(err, client.ErrFileExists):
		return clierr.Explain(err, "%s; xchat file get does not overwrite a file: remove it or pass --out with another path", shownName(err.Error()))
	case errors.Is(err, client.ErrUnknownFile):
		return a.unknownFile(err, f.ID)
	}
	var we *wire.Error
	if errors.As(err, &we) && we.Code == wire.CodeUnknownBlob {
		return clierr.Explain(err, "the homeserver of %s no longer has the file %s (files are kept %d days): ask %s to send it again",
			f.Ref.Domain, shownName(f.Ref.Name), wire.BlobRetention/86400, f.From)
	}
	return a.stopped(err, "download", m)
}

// corruptReason is the part of a corrupt-file error that names the
// problem ("chunk 3 of 8 does not authenticate (altered, reordered or
// truncated)"): what follows filecrypt.ErrCorrupt's text, or the whole.
func corruptReason(err error) string {
	msg := err.Error()
	if _, why, ok := strings.Cut(msg, filecrypt.ErrCorrupt.Error()+": "); ok {
		return why
	}
	return msg
}

// jsonListed is one line of file list --json.
type jsonListed struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Size         uint64 `json:"size"`
	MediaType    string `json:"media_type"`
	Caption      string `json:"caption"`
	From         string `json:"from"`
	Outgoing     bool   `json:"outgoing"`
	Conversation string `json:"conversation"` // the other user of a one-to-one chat, or the group's name
	Group        string `json:"group"`        // the chat's group ID
	SentAt       string `json:"sent_at"`
	ReceivedAt   string `json:"received_at"`
	Path         string `json:"path,omitempty"`    // where it was downloaded
	Partial      int64  `json:"partial,omitempty"` // bytes of an unfinished download
}

func (a *app) fileListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--json]",
		Short: "List the files sent and received in this profile's chats, newest first, and where they were downloaded",
		Long: "Lists the files of this profile's chats as this device received or sent them, newest first:\n" +
			"ID, when, who sent it, in which chat, name and size, and the path it was downloaded to (or how\n" +
			"much of an interrupted download is done). It does not connect: run 'xchat recv' for new ones.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			p, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer p.Close()
			files, err := p.Files(ctx)
			if err != nil {
				return err
			}
			groups, err := client.ProfileGroups(ctx, p)
			if err != nil {
				return err
			}
			peers := map[string]string{}
			for _, g := range groups {
				if g.Direct {
					peers[string(g.ID)] = g.Peer
				}
			}
			enc := json.NewEncoder(a.stdout)
			for _, f := range files {
				conv := f.GroupName
				if f.Direct {
					conv = peers[string(f.Group)]
				}
				if asJSON {
					if err := enc.Encode(jsonListed{ID: f.ID, Name: f.Ref.Name, Size: f.Ref.Size, MediaType: f.Ref.MediaType,
						Caption: f.Caption, From: f.From, Outgoing: f.Outgoing, Conversation: conv, Group: hex.EncodeToString(f.Group),
						SentAt: f.SentAt.UTC().Format(time.RFC3339Nano), ReceivedAt: f.ReceivedAt.UTC().Format(time.RFC3339Nano),
						Path: f.Path, Partial: f.Partial}); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintln(a.stdout, listLine(&f, conv))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	return cmd
}

// listLine is one line of file list: "ID 2026-12-07 23:40:01 alice@a.test
// (direct with bob@b.test): name (1.0 MiB) saved as PATH".
func listLine(f *client.File, conv string) string {
	where := fmt.Sprintf("in %q", conv)
	if f.Direct {
		where = "direct with " + conv
	}
	state := "not downloaded"
	switch {
	case f.Outgoing:
		state = "sent"
	case f.Path != "":
		state = "saved as " + shownName(f.Path)
	case f.Partial > 0:
		state = fmt.Sprintf("%s downloaded", progress.Bytes(f.Partial))
	}
	return fmt.Sprintf("%s %s %s (%s): %s (%s) %s", f.ID, f.ReceivedAt.Local().Format("2006-01-02 15:04:05"), f.From, where,
		shownName(f.Ref.Name), progress.Bytes(int64(f.Ref.Size)), state)
}

// shownName is a file name (or media type) from another user as the
// plain output shows it: characters that change how text is displayed,
// such as U+202E (right-to-left override), which can disguise an
// extension, and controls are shown as \u escapes (spec/11-files.md
// section 11.5). JSON output carries names as they are.
func shownName(name string) string {
	var b strings.Builder
	for _, r := range name {
		if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) || r == utf8.RuneError {
			fmt.Fprintf(&b, "\\u%04x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
