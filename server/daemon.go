package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/federation"
	"github.com/xchat-im/xchat/server/devca"
	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/server/store/sqlite"
	"github.com/xchat-im/xchat/spec/wire"
)

// Options configure a homeserver process (xchatd serve).
type Options struct {
	Domain       string
	Listen       string // UDP address
	DataDir      string
	TLSCert      string // PEM certificate chain; empty: development CA
	TLSKey       string
	Registration Registration
	// MaxConnections bounds concurrent client connections; zero: the
	// default.
	MaxConnections int
	// Peers are static federation peers, DOMAIN to HOST:PORT.
	Peers map[string]string
	// TrustCAs are PEM files of extra roots for peers' certificates, added
	// to the system roots.
	TrustCAs []string
	// AllowDomains, when not empty, are the only domains that federate;
	// DenyDomains never do.
	AllowDomains, DenyDomains []string
	// Retry and MaxRetry tune the relay backoff, OutboundTTL how long an
	// envelope may wait for its peer; zero: the defaults.
	Retry, MaxRetry, OutboundTTL time.Duration
	Logger                       *slog.Logger
	// Out receives the lines a user should read (paths of generated
	// certificates, the listening address). Nil: discarded.
	Out io.Writer
}

// Files in the data directory.
const (
	dbFile       = "xchatd.db"
	certKeyFile  = "sender-cert.key"
	resetKeyFile = "stateless-reset.key"
	devCADir     = "dev-ca"
)

// Run runs a homeserver until ctx is cancelled, then shuts it down
// gracefully and closes its store. ready, if not nil, is called with the
// bound address once the server accepts connections.
func Run(ctx context.Context, o Options, ready func(net.Addr)) error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if err := wire.ValidateDomain(o.Domain); err != nil {
		return fmt.Errorf("--domain: %w", err)
	}
	// Bind first: a taken port is the most common start-up failure, and it
	// should not leave a fresh data directory behind.
	addr, err := net.ResolveUDPAddr("udp", o.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", o.Listen, err)
	}
	pc, err := net.ListenUDP("udp", addr)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", o.Listen, err)
	}
	defer pc.Close()
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	cert, err := loadOrMakeCert(o)
	if err != nil {
		return err
	}
	certKey, err := loadOrCreateCertKey(filepath.Join(o.DataDir, certKeyFile))
	if err != nil {
		return fmt.Errorf("sender-certificate key: %w", err)
	}
	var resetKey quic.StatelessResetKey
	rk, err := loadOrCreateSecret(filepath.Join(o.DataDir, resetKeyFile), len(resetKey))
	if err != nil {
		return fmt.Errorf("stateless reset key: %w", err)
	}
	copy(resetKey[:], rk)

	roots, err := trustRoots(o.TrustCAs)
	if err != nil {
		return err
	}
	st, err := sqlite.Open(ctx, filepath.Join(o.DataDir, dbFile), store.DefaultLimits(), o.Logger)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer st.Close()
	srv, err := New(Config{
		Domain: o.Domain, Store: st, Certificate: cert, CertKey: certKey, ResetKey: resetKey,
		Registration: o.Registration, Logger: o.Logger, MaxConnections: o.MaxConnections,
		Federation: federation.Config{
			Roots: roots, Peers: o.Peers, Allow: o.AllowDomains, Deny: o.DenyDomains,
			Retry: o.Retry, MaxRetry: o.MaxRetry, OutboundTTL: o.OutboundTTL,
		},
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "xchatd: serving %s on %s (udp), registration %s\n", o.Domain, pc.LocalAddr(), o.Registration)
	if ready != nil {
		ready(pc.LocalAddr())
	}
	if err := srv.Serve(ctx, pc); err != nil {
		return err
	}
	if err := st.Close(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

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

// CreateInvite makes a single-use invite token valid for ttl in the store of
// the data directory and returns it. It may run while a server uses the
// same directory.
func CreateInvite(ctx context.Context, dataDir string, ttl time.Duration) (string, error) {
	if _, err := os.Stat(dataDir); err != nil {
		return "", fmt.Errorf("data directory: %w", err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dataDir, dbFile), store.DefaultLimits(), nil)
	if err != nil {
		return "", fmt.Errorf("store: %w", err)
	}
	defer st.Close()
	raw := make([]byte, 18)
	rand.Read(raw)
	token := base64.RawURLEncoding.EncodeToString(raw)
	h := sha256.Sum256([]byte(token))
	if err := st.CreateInvite(ctx, h[:], time.Now().Add(ttl)); err != nil {
		return "", err
	}
	return token, st.Close()
}
