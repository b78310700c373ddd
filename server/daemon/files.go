package daemon

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/xchat-im/xchat/server/devca"
)

// Files in the data directory.
const (
	// DBFile is the embedded SQLite store.
	DBFile = "xchatd.db"
	// CertKeyFile is the domain's Ed25519 sender-certificate signing key
	// (PKCS #8 PEM), made on first start.
	CertKeyFile = "sender-cert.key"
	// ResetKeyFile is the QUIC stateless-reset key, made on first start.
	ResetKeyFile = "stateless-reset.key"
	// DevCADir holds the development CA and the domain's certificate from
	// it, made on first start when no certificate is configured.
	DevCADir = "dev-ca"
)

// trustRoots returns the system roots plus the certificates in files.
func trustRoots(files []string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("--trust-ca: %w", err)
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--trust-ca %s: no PEM certificate", f)
		}
	}
	return pool, nil
}

// loadOrMakeCert loads the configured certificate, or the development
// certificate of the data directory, making it (and its CA) when missing
// and telling out where they are.
func loadOrMakeCert(c Config, out io.Writer) (tls.Certificate, error) {
	if c.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("TLS certificate: %w", err)
		}
		return cert, nil
	}
	dir := filepath.Join(c.DataDir, DevCADir)
	certPath, keyPath := devca.DomainCertPath(dir, c.Domain), devca.DomainKeyPath(dir, c.Domain)
	if _, err := os.Stat(certPath); errors.Is(err, os.ErrNotExist) {
		ca, err := devca.LoadOrCreate(dir)
		if err != nil {
			return tls.Certificate{}, err
		}
		if err := ca.Issue(dir, c.Domain); err != nil {
			return tls.Certificate{}, err
		}
	}
	fmt.Fprintf(out, "xchatd: no --tls-cert given: using development certificate %s\n", certPath)
	fmt.Fprintf(out, "xchatd: clients trust it with --ca %s\n", devca.CertPath(dir))
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("development certificate: %w", err)
	}
	return cert, nil
}

// loadOrCreateCertKey reads the Ed25519 sender-certificate key (PKCS #8
// PEM), creating it on first start.
func loadOrCreateCertKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, err
		}
		if err := writeSecret(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
			return nil, err
		}
		return priv, nil
	}
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s: not PEM", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not Ed25519", path)
	}
	return priv, nil
}

// loadOrCreateSecret reads a file of n random bytes, creating it on first
// start.
func loadOrCreateSecret(path string, n int) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != n {
			return nil, fmt.Errorf("%s: %d bytes, want %d", path, len(b), n)
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	b = make([]byte, n)
	rand.Read(b)
	return b, writeSecret(path, b)
}

// writeSecret writes a file readable by its owner only, atomically.
func writeSecret(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
