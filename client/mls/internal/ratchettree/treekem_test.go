package ratchettree

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/xchat-im/xchat/client/mls/internal/ciphersuite"
	"github.com/xchat-im/xchat/client/mls/internal/codec"
	"github.com/xchat-im/xchat/client/mls/internal/message"
	"github.com/xchat-im/xchat/client/mls/internal/treemath"
)

type treeKEMVector struct {
	CipherSuite             uint16   `json:"cipher_suite"`
	GroupID                 hexBytes `json:"group_id"`
	Epoch                   uint64   `json:"epoch"`
	ConfirmedTranscriptHash hexBytes `json:"confirmed_transcript_hash"`
	RatchetTree             hexBytes `json:"ratchet_tree"`
	LeavesPrivate           []struct {
		Index          uint32   `json:"index"`
		EncryptionPriv hexBytes `json:"encryption_priv"`
		SignaturePriv  hexBytes `json:"signature_priv"`
		PathSecrets    []struct {
			Node       uint32   `json:"node"`
			PathSecret hexBytes `json:"path_secret"`
		} `json:"path_secrets"`
	} `json:"leaves_private"`
	UpdatePaths []struct {
		Sender        uint32     `json:"sender"`
		UpdatePath    hexBytes   `json:"update_path"`
		PathSecrets   []hexBytes `json:"path_secrets"`
		CommitSecret  hexBytes   `json:"commit_secret"`
		TreeHashAfter hexBytes   `json:"tree_hash_after"`
	} `json:"update_paths"`
}

func TestTreeKEMVectors(t *testing.T) {
	var vs []treeKEMVector
	loadVectors(t, "treekem.json", &vs)
	var passed, applied atomic.Int64
	t.Cleanup(func() {
		t.Logf("%d treekem cases run, %d vector update paths applied", passed.Load(), applied.Load())
	})
	for ci, v := range vs {
		cs, ok := suiteOrSkip(t, v.CipherSuite)
		if !ok {
			continue
		}
		t.Run(fmt.Sprint(ci), func(t *testing.T) {
			t.Parallel()
			treeKEMCase(t, ci, cs, &v, &passed, &applied)
		})
	}
}

// treeKEMCase checks one treekem.json case.
func treeKEMCase(t *testing.T, ci int, cs *ciphersuite.CipherSuite, v *treeKEMVector, passed, applied *atomic.Int64) {
	{
		r := codec.NewReader(v.RatchetTree)
		var rt message.RatchetTree
		if err := rt.Unmarshal(r); err != nil || r.Done() != nil {
			t.Fatalf("case %d: ratchet tree: %v", ci, err)
		}
		tree, err := NewTree(rt)
		if err != nil {
			t.Fatalf("case %d: %v", ci, err)
		}
		gc := message.GroupContext{
			CipherSuite:             ciphersuite.CipherSuiteID(v.CipherSuite),
			GroupID:                 v.GroupID,
			Epoch:                   v.Epoch,
			ConfirmedTranscriptHash: v.ConfirmedTranscriptHash,
		}
		privs := map[treemath.LeafIndex]*TreeKEMPrivate{}
		sigs := map[treemath.LeafIndex][]byte{}
		for _, lp := range v.LeavesPrivate {
			l := treemath.LeafIndex(lp.Index)
			p := NewTreeKEMPrivate(l, lp.EncryptionPriv)
			for _, s := range lp.PathSecrets {
				pub, err := p.SetPathSecret(cs, treemath.NodeIndex(s.Node), s.PathSecret)
				if err != nil {
					t.Fatalf("case %d leaf %d: %v", ci, l, err)
				}
				if !bytes.Equal(pub, tree.NodePublicKey(treemath.NodeIndex(s.Node))) {
					t.Fatalf("case %d leaf %d: path secret of node %d gives a different key", ci, l, s.Node)
				}
			}
			privs[l] = p
			sigs[l] = lp.SignaturePriv
		}

		for ui, u := range v.UpdatePaths {
			r := codec.NewReader(u.UpdatePath)
			var up message.UpdatePath
			if err := up.Unmarshal(r); err != nil || r.Done() != nil {
				t.Fatalf("case %d path %d: decode: %v", ci, ui, err)
			}
			sender := treemath.LeafIndex(u.Sender)
			verified := false
			receivers := slices.Sorted(maps.Keys(privs))
			if raceEnabled && len(receivers) > 4 {
				// Under -race (about 15 times slower) a sample: the
				// first leaves and the last one.
				receivers = append(receivers[:3], receivers[len(receivers)-1])
			}
			for _, l := range receivers {
				p := privs[l]
				if l == sender {
					continue
				}
				tr := tree.Clone()
				np := p.Clone()
				cs2, err := ApplyUpdatePath(cs, tr, np, sender, &up, gc, nil)
				if err != nil {
					t.Fatalf("case %d path %d leaf %d: %v", ci, ui, l, err)
				}
				ca := treemath.CommonAncestor(l.Node(), sender.Node())
				if want := u.PathSecrets[l]; !bytes.Equal(np.PathSecrets[ca], want) {
					t.Errorf("case %d path %d leaf %d: path secret %x, want %x", ci, ui, l, np.PathSecrets[ca], want)
				}
				if !bytes.Equal(cs2, u.CommitSecret) {
					t.Errorf("case %d path %d leaf %d: commit secret mismatch", ci, ui, l)
				}
				th, err := tr.TreeHash(cs)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(th, u.TreeHashAfter) {
					t.Errorf("case %d path %d leaf %d: tree hash after mismatch", ci, ui, l)
				}
				// Every receiver merges the same tree: verify its parent
				// hashes once.
				if applied.Add(1); !verified {
					verified = true
					if err := tr.VerifyParentHashes(cs); err != nil {
						t.Errorf("case %d path %d leaf %d: %v", ci, ui, l, err)
					}
				}
			}
		}

		// Some leaves with private state commit (a few, to keep the test
		// fast under -race); every other one processes the commit and must
		// reach the same commit secret and tree.
		committers := slices.Sorted(maps.Keys(privs))
		limit := 3
		if raceEnabled {
			limit = 1
		}
		if len(committers) > limit {
			committers = committers[:limit]
		}
		for _, l := range committers {
			tr := tree.Clone()
			res, err := GenerateUpdatePath(cs, tr, l, *tree.Leaf(l), sigs[l], gc, nil)
			if err != nil {
				t.Fatalf("case %d leaf %d: generate: %v", ci, l, err)
			}
			want, err := tr.TreeHash(cs)
			if err != nil {
				t.Fatal(err)
			}
			others := slices.Sorted(maps.Keys(privs))
			if raceEnabled && len(others) > 4 {
				others = append(others[:3], others[len(others)-1])
			}
			for _, o := range others {
				q := privs[o]
				if o == l {
					continue
				}
				ot := tree.Clone()
				cs2, err := ApplyUpdatePath(cs, ot, q.Clone(), l, res.Path, gc, nil)
				if err != nil {
					t.Fatalf("case %d leaf %d -> %d: apply: %v", ci, l, o, err)
				}
				if !bytes.Equal(cs2, res.CommitSecret) {
					t.Errorf("case %d leaf %d -> %d: commit secret mismatch", ci, l, o)
				}
				got, err := ot.TreeHash(cs)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("case %d leaf %d -> %d: tree hash mismatch", ci, l, o)
				}
			}
		}
		passed.Add(1)
	}
}
