package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/spec/wire"
)

// tlsConfig returns the TLS configuration for a server of domain, trusting
// caFile in addition to nothing else when given, else the system roots.
func tlsConfig(domain, caFile string) (*tls.Config, error) {
	conf := &tls.Config{
		ServerName: domain,
		NextProtos: []string{wire.ALPN},
		MinVersion: tls.VersionTLS13,
	}
	if caFile != "" {
		pemBytes, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("CA file %s: no PEM certificate", caFile)
		}
		conf.RootCAs = pool
	}
	return conf, nil
}

// conn is one QUIC connection to a homeserver.
type conn struct {
	qc *quic.Conn
}

// dial connects to the homeserver of domain at server (host:port).
func dial(ctx context.Context, server, domain, caFile string) (*conn, error) {
	tc, err := tlsConfig(domain, caFile)
	if err != nil {
		return nil, err
	}
	qc, err := quic.DialAddr(ctx, server, tc, &quic.Config{
		// quic-go gives up on a handshake after twice this.
		HandshakeIdleTimeout: wire.HandshakeDeadline / 2,
		MaxIdleTimeout:       wire.IdleTimeout,
		KeepAlivePeriod:      wire.KeepAlive,
		MaxIncomingStreams:   -1,   // the server opens no bidirectional streams
		EnableDatagrams:      true, // call media (spec/12-calls.md section 12.5)
	})
	if err != nil {
		return nil, dialError(server, domain, caFile, err)
	}
	return &conn{qc: qc}, nil
}

// dialError explains the usual reasons a connection fails.
func dialError(server, domain, caFile string, err error) error {
	var idle *quic.IdleTimeoutError
	var hs *quic.HandshakeTimeoutError
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	switch {
	case errors.As(err, &idle), errors.As(err, &hs):
		return fmt.Errorf("no answer from %s (UDP): is the homeserver of %s running there? (%w)", server, domain, err)
	case errors.As(err, &unknownCA) && caFile == "":
		return fmt.Errorf("the certificate of %s at %s is not from a trusted CA; for a development server pass its CA with --ca FILE (%w)", domain, server, err)
	case errors.As(err, &unknownCA):
		return fmt.Errorf("the certificate of %s at %s is not signed by the CA in %s (%w)", domain, server, caFile, err)
	case errors.As(err, &hostname):
		return fmt.Errorf("the server at %s has no certificate for %s (%w)", server, domain, err)
	}
	return fmt.Errorf("connect to %s at %s: %w", domain, server, err)
}

func (c *conn) close() { c.qc.CloseWithError(wire.CloseNoError, "") }

// exporter returns the device-authentication exporter value.
func (c *conn) exporter() ([]byte, error) {
	cs := c.qc.ConnectionState().TLS
	return cs.ExportKeyingMaterial(wire.ExporterLabel, nil, 32)
}

// do sends one request on its own stream and decodes the response into
// resp. An error response is returned as *wire.Error.
func (c *conn) do(ctx context.Context, req wire.Request, resp any) error {
	if err := wire.RoundTrip(ctx, c.qc, req, resp); err != nil {
		return closeReason(err)
	}
	return nil
}

// closeReason turns the homeserver's connection close codes into plain
// words, keeping err in the chain.
func closeReason(err error) error {
	var ae *quic.ApplicationError
	if errors.As(err, &ae) && ae.Remote {
		switch ae.ErrorCode {
		case wire.CloseServerShutdown:
			return fmt.Errorf("the homeserver shut down (%w)", err)
		case wire.CloseAuthTimeout:
			return fmt.Errorf("the homeserver closed the connection: not authenticated in time (%w)", err)
		case wire.CloseProtocolViolation:
			return fmt.Errorf("the homeserver closed the connection: protocol violation (%w)", err)
		}
	}
	var idle *quic.IdleTimeoutError
	if errors.As(err, &idle) {
		return fmt.Errorf("the homeserver stopped answering (%w)", err)
	}
	return err
}
