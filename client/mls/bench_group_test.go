package mls

import (
	"fmt"
	"testing"
)

// benchGroup returns the creator's state of an n-member group (suite
// 0xF031) whose tree has a full path after an update commit.
func benchGroup(b *testing.B, n int) *Group {
	b.Helper()
	cs, err := LookupSuite(XWingAES128GCMSHA256Ed25519)
	if err != nil {
		b.Fatal(err)
	}
	g, err := CreateGroup(cs, []byte("bench"), newBundle(b, cs, "creator"), Config{})
	if err != nil {
		b.Fatal(err)
	}
	var kps []KeyPackage
	for i := 1; i < n; i++ {
		kps = append(kps, newBundle(b, cs, fmt.Sprint("m", i)).KeyPackage)
	}
	commit(b, g, CommitOptions{Add: kps})
	commit(b, g, CommitOptions{Update: true})
	return g
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
		g, err := UnmarshalGroup(state, Config{})
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
		g, err := UnmarshalGroup(state, Config{})
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
