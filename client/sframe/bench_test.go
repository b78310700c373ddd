package sframe

import (
	"fmt"
	"testing"
	"time"
)

func BenchmarkSeal(b *testing.B) {
	for _, cs := range []CipherSuite{AES128GCMSHA256_128, AES128CTRHMACSHA256_80} {
		for _, size := range []int{160, 4096} {
			b.Run(fmt.Sprintf("%v/%d", cs, size), func(b *testing.B) {
				k, err := DeriveKey(cs, MLSKeyID(3, 1), baseKeyOf(1))
				if err != nil {
					b.Fatal(err)
				}
				pt, m := make([]byte, size), meta(1, 2)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				var ctr uint64
				for b.Loop() {
					if _, err := k.Seal(ctr, m, pt); err != nil {
						b.Fatal(err)
					}
					ctr++
				}
			})
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, cs := range []CipherSuite{AES128GCMSHA256_128, AES128CTRHMACSHA256_80} {
		for _, size := range []int{160, 4096} {
			b.Run(fmt.Sprintf("%v/%d", cs, size), func(b *testing.B) {
				k, err := DeriveKey(cs, MLSKeyID(3, 1), baseKeyOf(1))
				if err != nil {
					b.Fatal(err)
				}
				m := meta(1, 2)
				ct, err := k.Seal(1<<20, m, make([]byte, size))
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if _, _, err := k.Open(m, ct); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkMLS is the path of a call: Protect at the sender, Unprotect
// (key lookup and replay window) at the receiver.
func BenchmarkMLS(b *testing.B) {
	for _, size := range []int{160, 4096} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			now := time.Unix(1_700_000_000, 0)
			s := NewMLSSender(3)
			if err := s.SetEpoch(1, baseKeyOf(1)); err != nil {
				b.Fatal(err)
			}
			r := NewMLSReceiver()
			r.AddEpoch(1, baseKeyOf(1), now)
			pt, m := make([]byte, size), meta(3, 0)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				ct, err := s.Protect(m, pt)
				if err != nil {
					b.Fatal(err)
				}
				if _, _, _, err := r.Unprotect(m, ct, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
