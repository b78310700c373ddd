// Package devca makes a private certificate authority and per-domain
// certificates for local federations and tests. Certificates carry the
// server-authentication purpose only, as public CAs issue them.
package devca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// Validity of development certificates.
const Validity = 825 * 24 * time.Hour

// CA is a development certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Files of a CA directory.
func CertPath(dir string) string               { return filepath.Join(dir, "ca.pem") }
func keyPath(dir string) string                { return filepath.Join(dir, "ca.key") }
func DomainCertPath(dir, domain string) string { return filepath.Join(dir, domain+".pem") }
func DomainKeyPath(dir, domain string) string  { return filepath.Join(dir, domain+".key") }

// LoadOrCreate loads the CA in dir, or creates dir and a new CA in it.
func LoadOrCreate(dir string) (*CA, error) {
	ca, err := Load(dir)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return ca, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("devca: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devca: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "xchat development CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("devca: %w", err)
	}
	if err := writeKey(keyPath(dir), key); err != nil {
		return nil, err
	}
	if err := writePEM(CertPath(dir), "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	return &CA{Cert: cert, Key: key}, nil
}

// Load reads the CA in dir.
func Load(dir string) (*CA, error) {
	cb, err := os.ReadFile(CertPath(dir))
	if err != nil {
		return nil, fmt.Errorf("devca: %w", err)
	}
	kb, err := os.ReadFile(keyPath(dir))
	if err != nil {
		return nil, fmt.Errorf("devca: %w", err)
	}
	cblock, _ := pem.Decode(cb)
	kblock, _ := pem.Decode(kb)
	if cblock == nil || kblock == nil {
		return nil, fmt.Errorf("devca: %s: not PEM", dir)
	}
	cert, err := x509.ParseCertificate(cblock.Bytes)
	if err != nil {
		return nil, fmt.Errorf("devca: %w", err)
	}
	key, err := x509.ParsePKCS8PrivateKey(kblock.Bytes)
	if err != nil {
		return nil, fmt.Errorf("devca: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("devca: %s: unsupported key", dir)
	}
	return &CA{Cert: cert, Key: signer}, nil
}

// Issue writes DOMAIN.pem (the certificate followed by the CA's) and
// DOMAIN.key into dir for a server of domain.
func (ca *CA) Issue(dir, domain string) error {
	if err := wire.ValidateDomain(domain); err != nil {
		return fmt.Errorf("devca: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("devca: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: domain},
		DNSNames:     []string{domain},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(Validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(domain); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return fmt.Errorf("devca: %w", err)
	}
	if err := writeKey(DomainKeyPath(dir, domain), key); err != nil {
		return err
	}
	chain := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})...)
	return writeFile(DomainCertPath(dir, domain), chain, 0o644)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("devca: %w", err)
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return writeFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}

// writeFile writes data to path atomically with the given mode.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("devca: %w", err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fmt.Errorf("devca: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("devca: %w", err)
	}
	return nil
}
