package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/spec/wire"
)

// preflight makes one QUIC handshake with the homeserver of domain at
// server, trusting caFile (or the system roots), and closes it. register
// runs it before the profile keeps any keys: client.Register saves the new
// device's keys, with the server address and CA file, before it dials,
// and a later run with corrected flags finishes the registration without
// saving the corrected ones, which leaves a profile that cannot connect.
// A homeserver that does not answer, or whose certificate is not trusted,
// is found here and leaves the profile untouched.
func preflight(ctx context.Context, server, domain, caFile string) error {
	conf := &tls.Config{ServerName: domain, NextProtos: []string{wire.ALPN}, MinVersion: tls.VersionTLS13}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return fmt.Errorf("--ca: %w", err)
		}
		conf.RootCAs = x509.NewCertPool()
		conf.RootCAs.AppendCertsFromPEM(b)
	}
	qc, err := quic.DialAddr(ctx, server, conf, &quic.Config{HandshakeIdleTimeout: wire.HandshakeDeadline / 2})
	if err != nil {
		return fmt.Errorf("connect to %s at %s: %w", domain, server, err)
	}
	return qc.CloseWithError(wire.CloseNoError, "")
}
