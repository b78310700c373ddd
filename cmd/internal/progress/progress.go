// Package progress shows how far a transfer is: a one-line bar with bytes,
// rate and time left on a terminal, or one JSON object per line for
// programs (see Meter).
package progress

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Mode is how a Meter shows progress.
type Mode int

const (
	// Off shows nothing: output that is neither a terminal nor asked
	// for as JSON.
	Off Mode = iota
	// Bar rewrites one line of a terminal, ending it with a newline when
	// the transfer ends.
	Bar
	// JSON writes one JSON object per line (see Meter).
	JSON
)

// Interval is the shortest time between two progress lines; a line is
// also written whenever the transfer passes another tenth of its total.
const Interval = 200 * time.Millisecond

// ModeFor returns JSON when asJSON is set, else Bar when f is a terminal,
// else Off.
func ModeFor(asJSON bool, f *os.File) Mode {
	switch {
	case asJSON:
		return JSON
	case IsTerminal(f):
		return Bar
	}
	return Off
}

// IsTerminal reports whether f is a character device, which a terminal
// is (and /dev/null, which a bar does not harm).
func IsTerminal(f *os.File) bool {
	if f == nil {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Meter reports the progress of one transfer of Total bytes to w. Its
// methods may be called from any goroutine.
//
// In JSON mode each line is one object with an "event" member:
//
//	{"event":"start","resumed":N,"total":N}
//	{"event":"progress","done":N,"total":N,"resumed":N,"rate":N}
//	{"event":"done","done":N,"total":N,"resumed":N,"rate":N,"seconds":F,...}
//
// done counts the bytes transferred so far, including the resumed bytes
// that an earlier, interrupted run transferred; rate is bytes per second
// of this run (0 until it is known); seconds is the duration of this run.
// The done line carries further members that the command adds (see
// Finish). A progress line comes at most once per Interval, besides one
// whenever the transfer passes another tenth of the total (a program can
// act at a given fraction however fast the transfer is).
type Meter struct {
	mu      sync.Mutex
	w       io.Writer
	mode    Mode
	label   string
	now     func() time.Time
	started time.Time
	lastAt  time.Time // when the last progress line was written
	tenth   int64     // the tenth of the total the last line reported
	total   int64
	resumed int64
	done    int64
	width   int // of the bar line on the terminal, to overwrite it
	closed  bool
}

// New returns a Meter that writes to w in mode, naming the transfer label
// on a bar (a file name).
func New(w io.Writer, mode Mode, label string) *Meter {
	return &Meter{w: w, mode: mode, label: label, now: time.Now}
}

// Start reports that the transfer of total bytes begins with resumed of
// them already done. In JSON mode it writes the start line.
func (m *Meter) Start(resumed, total int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.started = m.now()
	m.total, m.resumed, m.done = total, resumed, resumed
	m.tenth = m.tenthOf(resumed)
	switch m.mode {
	case JSON:
		m.writeJSON(struct {
			Event   string `json:"event"`
			Resumed int64  `json:"resumed"`
			Total   int64  `json:"total"`
		}{"start", resumed, total})
	case Bar:
		m.drawBar()
	}
	m.lastAt = m.started
}

// Update reports that done bytes of the total are transferred. It
// writes a line when Interval passed since the last one, or when done
// reached another tenth of the total.
func (m *Meter) Update(done int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || done <= m.done {
		return
	}
	m.done = done
	now := m.now()
	tenth := m.tenthOf(done)
	if now.Sub(m.lastAt) < Interval && tenth == m.tenth {
		return
	}
	m.lastAt, m.tenth = now, tenth
	switch m.mode {
	case JSON:
		m.writeJSON(m.stats("progress"))
	case Bar:
		m.drawBar()
	}
}

// Finish reports the end of a successful transfer: the bar is completed
// and ends with a newline; in JSON mode the done line carries the members
// of extra, a struct or map that encodes as a JSON object, after its own.
func (m *Meter) Finish(extra any) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	m.done = m.total
	switch m.mode {
	case JSON:
		line, err := json.Marshal(m.stats("done"))
		if err != nil {
			return err
		}
		if extra != nil {
			more, err := json.Marshal(extra)
			if err != nil {
				return err
			}
			if len(more) < 2 || more[0] != '{' {
				return fmt.Errorf("progress: extra members %s are not a JSON object", more)
			}
			if len(more) > 2 {
				line = append(append(line[:len(line)-1], ','), more[1:]...)
			}
		}
		_, err = m.w.Write(append(line, '\n'))
		return err
	case Bar:
		m.drawBar()
		_, err := io.WriteString(m.w, "\n")
		return err
	}
	return nil
}

// Abort ends the display of a transfer that failed: the bar line is
// cleared, so that an error message starts on an empty line. It writes
// nothing in JSON mode (the command's error goes to stderr).
func (m *Meter) Abort() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.closed = true
	if m.mode == Bar && m.width > 0 {
		fmt.Fprintf(m.w, "\r%s\r", strings.Repeat(" ", m.width))
	}
}

// stats is a progress or done line.
type stats struct {
	Event   string   `json:"event"`
	Done    int64    `json:"done"`
	Total   int64    `json:"total"`
	Resumed int64    `json:"resumed"`
	Rate    int64    `json:"rate"`
	Seconds *float64 `json:"seconds,omitempty"` // done lines only
}

func (m *Meter) stats(event string) stats {
	s := stats{Event: event, Done: m.done, Total: m.total, Resumed: m.resumed, Rate: int64(m.rate())}
	if event == "done" {
		secs := m.now().Sub(m.started).Seconds()
		s.Seconds = &secs
	}
	return s
}

// rate returns the bytes per second of this run, or 0 before 100 ms
// passed (too early to say).
func (m *Meter) rate() float64 {
	elapsed := m.now().Sub(m.started)
	if elapsed < 100*time.Millisecond {
		return 0
	}
	return float64(m.done-m.resumed) / elapsed.Seconds()
}

// tenthOf returns how many tenths of the total done is.
func (m *Meter) tenthOf(done int64) int64 {
	if m.total <= 0 {
		return 10
	}
	return done * 10 / m.total
}

func (m *Meter) writeJSON(v any) {
	b, err := json.Marshal(v)
	if err == nil {
		m.w.Write(append(b, '\n'))
	}
}

// The bar line fits 79 columns (a terminal's width is not asked, which
// would need a dependency): at most labelWidth runes of the label and
// barWidth cells of the bar.
const (
	barWidth   = 14
	labelWidth = 14
)

// drawBar rewrites the terminal line: label, bar, bytes, percentage, rate
// and time left.
func (m *Meter) drawBar() {
	line := BarLine(m.label, m.done, m.total, m.rate())
	pad := ""
	if n := m.width - len(line); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	m.width = len(line)
	fmt.Fprintf(m.w, "\r%s%s", line, pad)
}

// BarLine formats one state of a bar: "name [==>           ] 12.0
// MiB/64.0 MiB  18% 8.0 MiB/s 6s left"; rate 0 shows no rate and no time
// left.
func BarLine(label string, done, total int64, rate float64) string {
	frac := 1.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	frac = min(max(frac, 0), 1)
	filled := int(frac * barWidth)
	bar := strings.Repeat("=", filled)
	if filled < barWidth {
		bar += ">" + strings.Repeat(" ", barWidth-filled-1)
	}
	var b strings.Builder
	if label != "" {
		fmt.Fprintf(&b, "%s ", shorten(label, labelWidth))
	}
	fmt.Fprintf(&b, "[%s] %s/%s %3d%%", bar, Bytes(done), Bytes(total), int(frac*100))
	if rate > 0 {
		fmt.Fprintf(&b, " %s/s", Bytes(int64(rate)))
		if done < total {
			left := time.Duration(float64(total-done) / rate * float64(time.Second))
			fmt.Fprintf(&b, " %s left", Duration(left))
		}
	}
	return b.String()
}

// shorten cuts s to at most n runes, marking the cut with "…".
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// Bytes formats n bytes in binary units: "512 B", "1.5 KiB", "64.0 MiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i])
}

// Duration formats a time left to the second: "45s", "3m07s", "2h05m",
// and ">99h" from 100 hours on.
func Duration(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	switch {
	case s >= 100*3600:
		return ">99h"
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	}
	return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
}
