package mls

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/xchat-im/xchat/client/mls/internal/vectortest"
	"github.com/xchat-im/xchat/client/mls/internal/welcome"
)

type passiveEpoch struct {
	Proposals          []hexBytes `json:"proposals"`
	Commit             hexBytes   `json:"commit"`
	EpochAuthenticator hexBytes   `json:"epoch_authenticator"`
}

type passiveCase struct {
	CipherSuite  uint16 `json:"cipher_suite"`
	ExternalPSKs []struct {
		PSKID hexBytes `json:"psk_id"`
		PSK   hexBytes `json:"psk"`
	} `json:"external_psks"`
	KeyPackage                hexBytes       `json:"key_package"`
	SignaturePriv             hexBytes       `json:"signature_priv"`
	EncryptionPriv            hexBytes       `json:"encryption_priv"`
	InitPriv                  hexBytes       `json:"init_priv"`
	Welcome                   hexBytes       `json:"welcome"`
	RatchetTree               hexBytes       `json:"ratchet_tree"`
	InitialEpochAuthenticator hexBytes       `json:"initial_epoch_authenticator"`
	Epochs                    []passiveEpoch `json:"epochs"`
}

// TestPassiveClientVectors runs every passive-client-*.json file of the
// vector directory: join from the Welcome, then process each epoch's
// proposals and commit, comparing epoch authenticators.
func TestPassiveClientVectors(t *testing.T) {
	dir := vectortest.Dir(t)
	files, err := filepath.Glob(filepath.Join(dir, "passive-client-*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no passive-client-*.json in %s", dir)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var cases []passiveCase
			if err := json.Unmarshal(b, &cases); err != nil {
				t.Fatal(err)
			}
			bySuite := map[uint16][]int{}
			unsupported := 0
			for i, c := range cases {
				if c.CipherSuite == 4 || c.CipherSuite == 6 {
					// X448 and Ed448 suites: not implemented.
					unsupported++
					continue
				}
				if _, err := LookupSuite(CipherSuiteID(c.CipherSuite)); err != nil {
					t.Errorf("case %d: %v", i, err)
					continue
				}
				bySuite[c.CipherSuite] = append(bySuite[c.CipherSuite], i)
			}
			t.Logf("%d cases, %d of unsupported suites (4, 6) not run", len(cases), unsupported)
			for suite, idx := range bySuite {
				t.Run("suite"+strconv.Itoa(int(suite)), func(t *testing.T) {
					t.Parallel()
					for _, i := range idx {
						runPassiveCase(t, i, &cases[i])
					}
				})
			}
		})
	}
}

func runPassiveCase(t *testing.T, i int, c *passiveCase) {
	t.Helper()
	cs, err := LookupSuite(CipherSuiteID(c.CipherSuite))
	if err != nil {
		t.Fatal(err)
	}
	var m MLSMessage
	if err := m.UnmarshalBinary(c.KeyPackage); err != nil || m.KeyPackage == nil {
		t.Fatalf("case %d: key package: %v", i, err)
	}
	bundle := &KeyPackageBundle{KeyPackage: *m.KeyPackage, InitPriv: c.InitPriv, EncryptionPriv: c.EncryptionPriv, SignaturePriv: c.SignaturePriv}
	ref, err := welcome.KeyPackageRef(cs, m.KeyPackage)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		ValidateCredential: acceptAnyCredential,
		ExternalPSK: func(id []byte) ([]byte, error) {
			for _, p := range c.ExternalPSKs {
				if bytes.Equal(p.PSKID, id) {
					return p.PSK, nil
				}
			}
			return nil, errors.New("unknown PSK")
		},
	}
	g, err := JoinFromWelcome(c.Welcome, func(r []byte) *KeyPackageBundle {
		if bytes.Equal(r, ref) {
			return bundle
		}
		return nil
	}, c.RatchetTree, cfg)
	if err != nil {
		t.Fatalf("case %d (suite %d): join: %v", i, c.CipherSuite, err)
	}
	if got := g.EpochAuthenticator(); !bytes.Equal(got, c.InitialEpochAuthenticator) {
		t.Fatalf("case %d (suite %d): initial epoch authenticator %x, want %x", i, c.CipherSuite, got, c.InitialEpochAuthenticator)
	}
	for n, e := range c.Epochs {
		for k, p := range e.Proposals {
			if _, err := g.Process(p); err != nil {
				t.Fatalf("case %d (suite %d) epoch %d: proposal %d: %v", i, c.CipherSuite, n, k, err)
			}
		}
		// The state persists across epochs with pending proposals.
		st, err := g.MarshalState()
		if err != nil {
			t.Fatal(err)
		}
		if g, err = UnmarshalGroup(st, cfg); err != nil {
			t.Fatalf("case %d: state: %v", i, err)
		}
		if _, err := g.Process(e.Commit); err != nil {
			t.Fatalf("case %d (suite %d) epoch %d: commit: %v", i, c.CipherSuite, n, err)
		}
		if got := g.EpochAuthenticator(); !bytes.Equal(got, e.EpochAuthenticator) {
			t.Fatalf("case %d (suite %d) epoch %d: epoch authenticator %x, want %x", i, c.CipherSuite, n, got, e.EpochAuthenticator)
		}
	}
}
