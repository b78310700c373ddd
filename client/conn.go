// Package client is the xchat reference client library: it registers a
// device, connects and authenticates, seals and sends messages, and receives
// them into a local profile before acknowledging them.
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
		HandshakeIdleTimeout: wire.HandshakeDeadline,
		MaxIdleTimeout:       wire.IdleTimeout,
		KeepAlivePeriod:      wire.KeepAlive,
	})
	if err != nil {
		return nil, fmt.Errorf("connect to %s (%s): %w", domain, server, err)
	}
	return &conn{qc: qc}, nil
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
	frame, err := wire.EncodeRequest(req)
	if err != nil {
		return err
	}
	st, err := c.qc.OpenStreamSync(ctx)
	if err != nil {
		return fmt.Errorf("open stream: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		st.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() {
		st.CancelRead(wire.StreamRequestCancelled)
		st.CancelWrite(wire.StreamRequestCancelled)
	})
	defer stop()
	if _, err := st.Write(frame); err != nil {
		return fmt.Errorf("send request: %w", err)
	}
	if err := st.Close(); err != nil {
		return fmt.Errorf("send request: %w", err)
	}
	payload, err := wire.ReadFrame(st, wire.MaxFrame)
	if errors.Is(err, wire.ErrEndOfStream) {
		return errors.New("server closed the stream without a response")
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("read response: %w", err)
	}
	return wire.DecodeResponse(payload, resp)
}
