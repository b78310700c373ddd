package callrun

import (
	"fmt"
	"strconv"
	"strings"
)

// Video is the test pattern a call sends (spec 12.8.2): its picture size
// and frame rate.
type Video struct {
	W, H int
	FPS  int
}

// DefaultVideo is what --video test sends.
var DefaultVideo = Video{W: 320, H: 240, FPS: 30}

// Video limits: the pattern's payload of a key frame (4·W·H/20 bytes) must
// fit a frame (wire.MaxCallFrame), and a sender's frame rate stays well
// below a relay's (wire.MaxCallFrameRate) with audio beside it.
const (
	MaxVideoPixels = 640 * 480
	MaxVideoFPS    = 60
)

// ParseVideo parses the value of --video: "test", "test:WxH" or
// "test:WxH@FPS". Omitted parts are DefaultVideo's.
func ParseVideo(s string) (Video, error) {
	v := DefaultVideo
	kind, spec, hasSpec := strings.Cut(s, ":")
	if kind != "test" {
		return v, fmt.Errorf("video %q: the only video source is the test pattern: test[:WxH[@FPS]]", s)
	}
	if !hasSpec {
		return v, nil
	}
	size, fps, hasFPS := strings.Cut(spec, "@")
	w, h, ok := strings.Cut(size, "x")
	var err error
	if !ok {
		return v, fmt.Errorf("video %q: want test:WxH[@FPS], such as test:320x240@30", s)
	}
	if v.W, err = strconv.Atoi(w); err != nil || v.W < 2 || v.W > 65535 {
		return v, fmt.Errorf("video %q: width %q is not a number of pixels from 2 to 65535", s, w)
	}
	if v.H, err = strconv.Atoi(h); err != nil || v.H < 2 || v.H > 65535 {
		return v, fmt.Errorf("video %q: height %q is not a number of pixels from 2 to 65535", s, h)
	}
	if v.W*v.H > MaxVideoPixels {
		return v, fmt.Errorf("video %q: %d pixels, at most %d (640x480)", s, v.W*v.H, MaxVideoPixels)
	}
	if hasFPS {
		if v.FPS, err = strconv.Atoi(fps); err != nil || v.FPS < 1 || v.FPS > MaxVideoFPS {
			return v, fmt.Errorf("video %q: frame rate %q is not a number from 1 to %d", s, fps, MaxVideoFPS)
		}
	}
	return v, nil
}

// String is the value of --video that gives v.
func (v Video) String() string { return fmt.Sprintf("test:%dx%d@%d", v.W, v.H, v.FPS) }
