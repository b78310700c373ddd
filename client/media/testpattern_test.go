package media_test

import (
	"errors"
	"testing"

	"github.com/xchat-im/xchat/client/media"
)

// specFrame builds frame n of the test pattern straight from the words of
// spec 12.8.2.
func specFrame(w, h int, n uint32) []byte {
	key := n%30 == 0
	body := w * h / 20
	var k byte
	if key {
		body *= 4
		k = 1
	}
	b := []byte{byte(w >> 8), byte(w), byte(h >> 8), byte(h), byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n), k, 0, 0, 0}
	for j := 0; j < body; j++ {
		b = append(b, byte((uint64(n)+uint64(j))%251))
	}
	return b
}

func TestTestPatternAsSpecified(t *testing.T) {
	t.Parallel()
	for _, size := range []media.TestPattern{{W: 64, H: 48}, {W: 320, H: 240}, {W: 7, H: 3}, {W: 0, H: 0}} {
		for _, n := range []uint32{0, 1, 29, 30, 31, 59, 60, 250, 251, 1000, 1<<32 - 1, 1<<32 - 16} {
			got := size.Frame(n)
			if want := specFrame(size.W, size.H, n); string(got) != string(want) {
				t.Fatalf("%dx%d frame %d: %d bytes differ from the spec's %d", size.W, size.H, n, len(got), len(want))
			}
			gn, key, err := media.CheckTestPattern(got)
			if err != nil || gn != n || key != media.IsTestKeyFrame(n) {
				t.Fatalf("%dx%d frame %d checks as %d, %v, %v", size.W, size.H, n, gn, key, err)
			}
		}
	}
	if n := len(media.TestPattern{W: 320, H: 240}.Frame(0)); n != 12+4*3840 {
		t.Errorf("320x240 key frame of %d bytes", n)
	}
	if n := len(media.TestPattern{W: 320, H: 240}.Frame(1)); n != 12+3840 {
		t.Errorf("320x240 frame of %d bytes", n)
	}
}

func TestTestPatternDetectsCorruption(t *testing.T) {
	t.Parallel()
	tp := media.TestPattern{W: 160, H: 120}
	for _, n := range []uint32{0, 7} {
		good := tp.Frame(n)
		for i := range good {
			bad := append([]byte(nil), good...)
			bad[i] ^= 0x01
			if _, _, err := media.CheckTestPattern(bad); !errors.Is(err, media.ErrTestPattern) {
				t.Fatalf("frame %d with byte %d flipped: %v", n, i, err)
			}
		}
		for _, bad := range [][]byte{good[:len(good)-1], append(append([]byte(nil), good...), 0), good[:11], nil} {
			if _, _, err := media.CheckTestPattern(bad); !errors.Is(err, media.ErrTestPattern) {
				t.Errorf("frame %d of %d bytes: %v", n, len(bad), err)
			}
		}
	}
	// A frame number changed to one with a different key flag or body is caught.
	b := tp.Frame(7)
	b[7] = 8
	if _, _, err := media.CheckTestPattern(b); !errors.Is(err, media.ErrTestPattern) {
		t.Errorf("frame 7 relabelled 8: %v", err)
	}
	b = tp.Frame(1)
	b[7] = 0
	if _, _, err := media.CheckTestPattern(b); !errors.Is(err, media.ErrTestPattern) {
		t.Errorf("frame 1 relabelled 0 (a key frame): %v", err)
	}
}
