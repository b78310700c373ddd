package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/client"
	"github.com/xchat-im/xchat/cmd/internal/clierr"
	"github.com/xchat-im/xchat/spec/wire"
)

// checkCAFile checks that file holds a PEM certificate and returns its
// absolute path, which the profile keeps.
func checkCAFile(file string) (string, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return "", clierr.Explain(err, "--ca %s: no such file", file)
	}
	if err != nil {
		return "", fmt.Errorf("--ca: %w", err)
	}
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return "", fmt.Errorf("--ca %s: no PEM certificate in it (want the CA's certificate, e.g. ca.pem from 'xchatd dev-ca')", file)
		}
		if block.Type == "CERTIFICATE" {
			if _, err := x509.ParseCertificate(block.Bytes); err == nil {
				break
			}
		}
	}
	return filepath.Abs(file)
}

// explain turns err, which a command returned, into the user's words when
// it is one of the failures a user can act on; other errors are returned
// as they are.
func (a *app) explain(err error) error {
	var ue *clierr.Explained
	if errors.As(err, &ue) {
		return err
	}
	if msg := a.connectFailure(err); msg != "" {
		return &clierr.Explained{Msg: msg, Err: err}
	}
	if msg := a.refusal(err); msg != "" {
		return &clierr.Explained{Msg: msg, Err: err}
	}
	switch {
	case errors.Is(err, client.ErrNoIdentity):
		return clierr.Explain(err, "no account in the profile %s: run 'xchat register USER@DOMAIN --server HOST:PORT' first, or pass --profile", a.profile)
	case errors.Is(err, syscall.ENOTDIR):
		return clierr.Explain(err, "--profile %s is not a directory", a.profile)
	case errors.Is(err, client.ErrInCall):
		return clierr.Explain(err, "this device is already in a call: end it first")
	case errors.Is(err, context.Canceled):
		return clierr.Explain(err, "interrupted")
	}
	return err
}

// checkServer is the advice on where the homeserver address came from.
func (a *app) checkServer() string {
	if a.fromFlags {
		return "check --server"
	}
	return "this profile's homeserver address comes from 'xchat register' ('xchat whoami' shows it)"
}

// connectFailure explains why the homeserver could not be reached, or ""
// when err is not a connection failure.
func (a *app) connectFailure(err error) string {
	_, domain := wire.SplitAddress(a.self)
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var idle *quic.IdleTimeoutError
	var hs *quic.HandshakeTimeoutError
	var dns *net.DNSError
	var addr *net.AddrError
	switch {
	case errors.As(err, &unknownCA) && a.caFile == "":
		return fmt.Sprintf("the certificate of the homeserver at %s is not signed by a CA this system trusts: for a development server pass its CA with --ca FILE", a.server)
	case errors.As(err, &unknownCA) && a.fromFlags:
		return fmt.Sprintf("the certificate of the homeserver at %s is not signed by the CA in %s: pass the CA that issued it with --ca", a.server, a.caFile)
	case errors.As(err, &unknownCA):
		return fmt.Sprintf("the certificate of the homeserver at %s is no longer signed by the CA this profile trusts (%s)", a.server, a.caFile)
	case errors.As(err, &hostname):
		if domain == "" {
			domain = strings.Join(hostname.Certificate.DNSNames, ", ")
			return fmt.Sprintf("the homeserver at %s has no certificate for this address's domain (it serves %s): %s", a.server, domain, a.checkServer())
		}
		return fmt.Sprintf("the homeserver at %s has no certificate for %s: %s", a.server, domain, a.checkServer())
	case errors.As(err, &idle), errors.As(err, &hs):
		return fmt.Sprintf("cannot reach the homeserver at %s (no answer within %s): is xchatd running there? %s",
			a.server, time.Since(a.dialed).Round(time.Second), a.checkServer())
	case errors.As(err, &dns):
		return fmt.Sprintf("cannot find the host of the homeserver address %s (%s): %s", a.server, dns.Err, a.checkServer())
	case errors.As(err, &addr):
		return fmt.Sprintf("%q is not a homeserver address (%s): want HOST:PORT", a.server, addr.Err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("the homeserver at %s did not answer within %s: try again later", a.server, timeout)
	}
	return ""
}

// refusal explains a protocol error response of the homeserver, or
// returns "" when err holds none.
func (a *app) refusal(err error) string {
	var we *wire.Error
	if !errors.As(err, &we) {
		return ""
	}
	addr := a.self
	_, domain := wire.SplitAddress(addr)
	switch we.Code {
	case wire.CodeRegistrationClosed:
		return fmt.Sprintf("%s does not accept new accounts (registration is closed)", domain)
	case wire.CodeInviteInvalid:
		if a.invited {
			return fmt.Sprintf("the invite is not valid on %s (unknown, used or expired): ask the operator for a new one", domain)
		}
		return fmt.Sprintf("%s registers by invite only: ask its operator for an invite ('xchatd invite') and pass --invite TOKEN", domain)
	case wire.CodeAccountExists:
		return fmt.Sprintf("%s is already taken: choose another name", addr)
	case wire.CodeLinkInvalid:
		return "the link code is unknown, used or expired: run 'xchat device link' again on a device of the account"
	case wire.CodeWrongDomain:
		return fmt.Sprintf("the homeserver at %s does not serve this address's domain: %s", a.server, a.checkServer())
	case wire.CodeUnknownAccount:
		if p := a.peer(we.Message); p != "" {
			_, d := wire.SplitAddress(p)
			return fmt.Sprintf("%s has no account on %s", p, d)
		}
		return "one of " + strings.Join(a.peers, ", ") + " has no account (" + we.Message + ")"
	case wire.CodeUnknownDevice:
		if a.target != 0 {
			return fmt.Sprintf("%s has no device %d", addr, a.target)
		}
	case wire.CodeLastDevice:
		return fmt.Sprintf("device %d is the only device of %s; an account keeps at least one", a.target, addr)
	case wire.CodeAuthFailed:
		if a.device != 0 {
			return fmt.Sprintf("the homeserver does not accept this profile as device %d of %s: the device was removed from the account; to use this account here, link a new profile ('xchat device link' on a device of the account)", a.device, addr)
		}
	case wire.CodeRateLimited:
		// The server's message names the limit (spec 15.1).
		limit := "the homeserver limits requests from this device or address"
		if we.Message != "" {
			limit = "the homeserver refused: " + we.Message
		}
		if we.RetryAfter > 0 {
			return fmt.Sprintf("%s: try again in %s", limit, we.RetryAfter.Round(time.Second))
		}
		return limit + ": try again later"
	case wire.CodeOutboundFull:
		return fmt.Sprintf("your homeserver's queue for other domains is full (it bounds what one account, and what one destination domain, may have waiting while %s does not answer): try again later, once the queued messages are delivered or expire", a.peerDomains())
	case wire.CodeUnavailable:
		return fmt.Sprintf("the homeserver of %s cannot be reached from %s right now: try again later", a.peerDomains(), domain)
	case wire.CodeDomainRefused:
		return fmt.Sprintf("%s does not exchange messages with %s (a federation policy of one of the homeservers)", domain, a.peerDomains())
	case wire.CodeQuotaExceeded:
		limit := ""
		if we.Message != "" {
			limit = " (" + we.Message + ")"
		}
		return fmt.Sprintf("the file does not fit in what %s stores for this account%s: files are kept %d days after they are sent; try again once earlier ones expire",
			domain, limit, wire.BlobRetention/86400)
	case wire.CodeLimitExceeded:
		if we.Message != "" {
			return "the homeserver refused: " + we.Message
		}
	case wire.CodeRoomDenied:
		return "the homeserver refused to admit this device to the call's room (its token does not match): the call is not the one invited to"
	case wire.CodeCallFull:
		return fmt.Sprintf("the call is full on %s (it admits a limited number of devices of one homeserver to one call)", domain)
	case wire.CodeMailboxFull:
		return "the recipient's mailbox is full: try again later"
	case wire.CodeRequestLaneClosed, wire.CodeTokenInvalid:
		return fmt.Sprintf("%s does not accept messages from new contacts: they must write to you first", strings.Join(a.peers, ", "))
	}
	return ""
}

// peer returns the user named on the command line that the homeserver's
// message names, or the only one.
func (a *app) peer(msg string) string {
	if len(a.peers) == 1 {
		return a.peers[0]
	}
	if slices.Contains(a.peers, msg) {
		return msg
	}
	return ""
}

// peerDomains names the domains of the users named on the command line.
func (a *app) peerDomains() string {
	var ds []string
	for _, p := range a.peers {
		if _, d := wire.SplitAddress(p); !slices.Contains(ds, d) {
			ds = append(ds, d)
		}
	}
	if len(ds) == 0 {
		return "the other user"
	}
	return strings.Join(ds, ", ")
}
