package daemon_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/xchat-im/xchat/server/daemon"
	"github.com/xchat-im/xchat/server/devca"
	"github.com/xchat-im/xchat/server/servertest"
)

// Processes of one domain that share a PostgreSQL database share its
// sender-certificate key, whatever their data directories hold: else a
// certificate one issues fails against the domain key another serves. The
// first process keeps the key of its data directory (an upgrade from one
// process); a later one with another key file uses the database's.
func TestProcessesOnOneDatabaseShareTheDomainKey(t *testing.T) {
	t.Parallel()
	db := servertest.PostgresURL(t)
	if err := daemon.Migrate(servertest.Context(t), db); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	dir := t.TempDir()
	data := []string{filepath.Join(dir, "one"), filepath.Join(dir, "two"), filepath.Join(dir, "three")}
	// The first two data directories already have key files of their own,
	// made by earlier starts.
	var first ed25519.PublicKey
	for i := range 2 {
		if err := os.MkdirAll(data[i], 0o700); err != nil {
			t.Fatal(err)
		}
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = pub
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(data[i], daemon.CertKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	var keys [][]byte
	for _, d := range data {
		dm := start(t, daemon.Config{Domain: "d.test", Listen: "127.0.0.1:0", DataDir: d, DB: db, Out: &bytes.Buffer{}})
		info := serverInfo(t, dm.Addr(), "d.test", devca.CertPath(filepath.Join(d, daemon.DevCADir)))
		keys = append(keys, info.CertKey)
	}
	if !bytes.Equal(keys[0], first) {
		t.Errorf("the first process serves domain key %x, not the %x of its data directory", keys[0], first)
	}
	for i := 1; i < len(keys); i++ {
		if !bytes.Equal(keys[i], keys[0]) {
			t.Errorf("process %d (data %s) serves domain key %x, process 1 serves %x", i+1, data[i], keys[i], keys[0])
		}
	}
}
