package server

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/xchat-im/xchat/server/devca"
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

func loadOrMakeCert(o Options) (tls.Certificate, error) {
	if o.TLSCert != "" || o.TLSKey != "" {
		if o.TLSCert == "" || o.TLSKey == "" {
			return tls.Certificate{}, errors.New("--tls-cert and --tls-key go together")
		}
		c, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("TLS certificate: %w", err)
		}
		return c, nil
	}
	dir := filepath.Join(o.DataDir, devCADir)
	certPath, keyPath := devca.DomainCertPath(dir, o.Domain), devca.DomainKeyPath(dir, o.Domain)
	if _, err := os.Stat(certPath); errors.Is(err, os.ErrNotExist) {
		ca, err := devca.LoadOrCreate(dir)
		if err != nil {
			return tls.Certificate{}, err
		}
		if err := ca.Issue(dir, o.Domain); err != nil {
			return tls.Certificate{}, err
		}
	}
	fmt.Fprintf(o.Out, "xchatd: no --tls-cert given: using development certificate %s\n", certPath)
	fmt.Fprintf(o.Out, "xchatd: clients trust it with --ca %s\n", devca.CertPath(dir))
	c, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("development certificate: %w", err)
	}
	return c, nil
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
		return nil, fmt.Errorf("sender-certificate key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("sender-certificate key %s: not PEM", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("sender-certificate key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("sender-certificate key %s: not Ed25519", path)
	}
	return priv, nil
}

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
