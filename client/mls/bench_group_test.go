package mls

import (
	"fmt"
	"testing"
)

// benchGroup returns the creator's state of an n-member group (suite
// 0xF031) whose tree has a full path after an update commit.
func benchGroup(b *testing.B, n int) *Group {
	g, _ := benchGroupPair(b, n)
	return g
}

// benchGroupPair returns the creator's and another member's state of an
// n-member group.
func benchGroupPair(b *testing.B, n int) (*Group, *Group) {
	b.Helper()
	cs, err := LookupSuite(XWingAES128GCMSHA256Ed25519)
	if err != nil {
		b.Fatal(err)
	}
	g, err := CreateGroup(cs, []byte("bench"), newBundle(b, cs, "creator"), Config{ValidateCredential: acceptAnyCredential})
	if err != nil {
		b.Fatal(err)
	}
	var kps []KeyPackage
	var first *KeyPackageBundle
	for i := 1; i < n; i++ {
		kb := newBundle(b, cs, fmt.Sprint("m", i))
		if first == nil {
			first = kb
		}
		kps = append(kps, kb.KeyPackage)
	}
	_, w := commit(b, g, CommitOptions{Add: kps})
	m, err := JoinFromWelcome(w, bundleLookup(first), nil, Config{ValidateCredential: acceptAnyCredential})
	if err != nil {
		b.Fatal(err)
	}
	cm, _ := commit(b, g, CommitOptions{Update: true})
	deliver(b, cm, m)
	return g, m
}

// BenchmarkProcessGroup100 decrypts and verifies one application message
// in a 100-member group.
func BenchmarkProcessGroup100(b *testing.B) {
	g, m := benchGroupPair(b, 100)
	msgs := make([][]byte, 0, 1024)
	for range cap(msgs) {
		msg, err := g.Encrypt(make([]byte, 100), nil)
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, msg)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(msgs) {
			b.StopTimer()
			for j := range msgs {
				var err error
				if msgs[j], err = g.Encrypt(make([]byte, 100), nil); err != nil {
					b.Fatal(err)
				}
			}
			i = 0
			b.StartTimer()
		}
		if _, err := m.Process(msgs[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkEncryptGroup100 encrypts one application message (100 bytes)
// in a 100-member group.
func BenchmarkEncryptGroup100(b *testing.B) {
	g := benchGroup(b, 100)
	msg := make([]byte, 100)
	b.ReportAllocs()
	var m []byte
	for b.Loop() {
		var err error
		if m, err = g.Encrypt(msg, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(m)), "message-bytes")
}

// BenchmarkCommitAdd100 commits the addition of one member to a
// 100-member group, Welcome included.
func BenchmarkCommitAdd100(b *testing.B) {
	g := benchGroup(b, 100)
	state := mustState(b, g)
	kp := newBundle(b, g.cs, "new").KeyPackage
	b.ReportAllocs()
	var c, w []byte
	for b.Loop() {
		b.StopTimer()
		g, err := UnmarshalGroup(state, Config{ValidateCredential: acceptAnyCredential})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if c, w, err = g.Commit(CommitOptions{Add: []KeyPackage{kp}}); err != nil || w == nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(c)), "commit-bytes")
	b.ReportMetric(float64(len(w)), "welcome-bytes")
}

// BenchmarkCommitUpdate100 commits a path update in a 100-member group and
// reports its size.
func BenchmarkCommitUpdate100(b *testing.B) {
	g := benchGroup(b, 100)
	state := mustState(b, g)
	b.ReportAllocs()
	var c []byte
	for b.Loop() {
		b.StopTimer()
		g, err := UnmarshalGroup(state, Config{ValidateCredential: acceptAnyCredential})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if c, _, err = g.Commit(CommitOptions{Update: true}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(c)), "commit-bytes")
}
