package federation

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/xchat-im/xchat/spec/wire"
)

// dialTLS returns the TLS configuration to dial the server of domain: it
// presents this server's certificate and verifies the peer's as a
// server-authentication certificate for domain.
func (f *Federation) dialTLS(domain string) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{f.cfg.Certificate},
		RootCAs:      f.cfg.Roots,
		ServerName:   domain,
		NextProtos:   []string{wire.ALPNFederation},
		MinVersion:   tls.VersionTLS13,
	}
}

// ListenTLS returns the TLS configuration for accepting federation
// connections: it asks for the peer's certificate, which fed-hello checks
// against the domain the peer names.
func (f *Federation) ListenTLS(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAnyClientCert,
		NextProtos:   []string{wire.ALPNFederation},
		MinVersion:   tls.VersionTLS13,
	}
}

// verifyPeer checks that the certificate chain a peer presented is valid
// for domain as a server-authentication certificate under the trust roots.
// The client-authentication purpose is never required.
func (f *Federation) verifyPeer(cs tls.ConnectionState, domain string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots:         f.cfg.Roots,
		Intermediates: inter,
		DNSName:       domain,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("certificate not valid for %s: %w", domain, err)
	}
	return nil
}
