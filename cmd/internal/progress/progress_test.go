package progress

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a fake time source that tests move by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newMeter(mode Mode) (*Meter, *bytes.Buffer, *clock) {
	var buf bytes.Buffer
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	m := New(&buf, mode, "photo.jpg")
	m.now = c.now
	return m, &buf, c
}

func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		out = append(out, v)
	}
	return out
}

func TestJSONLines(t *testing.T) {
	t.Parallel()
	m, buf, c := newMeter(JSON)
	m.Start(100, 1000)
	c.advance(50 * time.Millisecond)
	m.Update(150) // too soon, same tenth: no line
	m.Update(210) // third tenth: a line although too soon
	c.advance(100 * time.Millisecond)
	m.Update(220) // too soon since the last line
	c.advance(100 * time.Millisecond)
	m.Update(230) // Interval passed
	m.Update(200) // going back is ignored
	c.advance(time.Second)
	if err := m.Finish(struct {
		ID   string `json:"id"`
		Path string `json:"path"`
	}{"ab", "/tmp/x"}); err != nil {
		t.Fatal(err)
	}
	m.Update(999) // after Finish: nothing
	want := []string{
		`{"event":"start","resumed":100,"total":1000}`,
		`{"event":"progress","done":210,"total":1000,"resumed":100,"rate":0}`,
		`{"event":"progress","done":230,"total":1000,"resumed":100,"rate":520}`,
		`{"event":"done","done":1000,"total":1000,"resumed":100,"rate":720,"seconds":1.25,"id":"ab","path":"/tmp/x"}`,
	}
	if got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	lines(t, buf) // every line is JSON
}

// Every tenth of the total gets a line however fast the transfer is: a
// test that interrupts at half relies on it.
func TestJSONEveryTenth(t *testing.T) {
	t.Parallel()
	m, buf, _ := newMeter(JSON)
	m.Start(0, 64<<20)
	for done := int64(0); done <= 64<<20; done += 512 << 10 {
		m.Update(done)
	}
	var tenths []int64
	for _, l := range lines(t, buf)[1:] {
		tenths = append(tenths, int64(l["done"].(float64))*10/(64<<20))
	}
	if len(tenths) != 10 {
		t.Fatalf("%d progress lines (%v), want one per tenth", len(tenths), tenths)
	}
	for i, x := range tenths {
		if x != int64(i+1) {
			t.Fatalf("progress lines at tenths %v", tenths)
		}
	}
}

func TestFinishExtra(t *testing.T) {
	t.Parallel()
	for _, extra := range []any{nil, struct{}{}, map[string]int{}} {
		m, buf, _ := newMeter(JSON)
		m.Start(0, 0)
		if err := m.Finish(extra); err != nil {
			t.Fatal(err)
		}
		l := lines(t, buf)
		if len(l) != 2 || l[1]["event"] != "done" || l[1]["total"] != 0.0 {
			t.Errorf("extra %#v: %s", extra, buf)
		}
	}
	m, _, _ := newMeter(JSON)
	m.Start(0, 1)
	if err := m.Finish([]int{1}); err == nil {
		t.Error("Finish accepted an array as extra members")
	}
}

func TestBar(t *testing.T) {
	t.Parallel()
	m, buf, c := newMeter(Bar)
	m.Start(0, 64<<20)
	c.advance(time.Second)
	m.Update(16 << 20)
	out := buf.String()
	if !strings.HasPrefix(out, "\rphoto.jpg [>") || !strings.Contains(out, "\rphoto.jpg [===>          ] 16.0 MiB/64.0 MiB  25% 16.0 MiB/s 3s left") {
		t.Errorf("bar output %q", out)
	}
	if strings.Contains(out, "\n") {
		t.Errorf("bar wrote a newline before the end: %q", out)
	}
	m.Abort()
	if !strings.HasSuffix(buf.String(), "\r"+strings.Repeat(" ", len(BarLine("photo.jpg", 16<<20, 64<<20, 16<<20)))+"\r") {
		t.Errorf("Abort did not clear the line: %q", buf.String())
	}

	m, buf, c = newMeter(Bar)
	m.Start(0, 1000)
	c.advance(time.Second)
	if err := m.Finish(nil); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(buf.String(), "1000 B/1000 B 100% 1000 B/s\n") {
		t.Errorf("finished bar %q", buf.String())
	}
}

func TestOff(t *testing.T) {
	t.Parallel()
	m, buf, _ := newMeter(Off)
	m.Start(0, 10)
	m.Update(5)
	m.Abort()
	if err := m.Finish(nil); err != nil || buf.Len() != 0 {
		t.Errorf("Off wrote %q (%v)", buf, err)
	}
}

func TestConcurrentUpdates(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	m := New(&buf, JSON, "")
	m.Start(0, 1<<20)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 256 {
				m.Update(int64(i*4+g+1) << 10)
			}
		})
	}
	wg.Wait()
	m.Finish(nil)
	lines(t, &buf)
}

func TestModeFor(t *testing.T) {
	t.Parallel()
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := ModeFor(false, f); got != Off {
		t.Errorf("regular file: mode %v, want Off", got)
	}
	if got := ModeFor(true, f); got != JSON {
		t.Errorf("--json: mode %v, want JSON", got)
	}
	if IsTerminal(nil) {
		t.Error("nil file is a terminal")
	}
	if null, err := os.Open(os.DevNull); err == nil {
		defer null.Close()
		if !IsTerminal(null) {
			t.Errorf("%s is not a character device", os.DevNull)
		}
	}
}

func TestFormats(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 64 << 20: "64.0 MiB", 5 << 30: "5.0 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
	for d, want := range map[time.Duration]string{400 * time.Millisecond: "0s", 45 * time.Second: "45s", 187 * time.Second: "3m07s",
		7500 * time.Second: "2h05m", 100 * time.Hour: ">99h"} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
	if got := BarLine("a-very-long-file-name-indeed.tar.gz", 0, 0, 0); got != "a-very-long-f… [==============] 0 B/0 B 100%" {
		t.Errorf("BarLine = %q", got)
	}
	// The longest lines fit 79 columns.
	for _, c := range []struct {
		done, total int64
		rate        float64
	}{{1023 << 20, 1023<<20 + 1, 1023 << 20}, {1000 << 20, 4<<30 - 1, 1000 << 20}, {1, 4 << 30, 1000}} {
		if got := BarLine("a-very-long-file-name-indeed.tar.gz", c.done, c.total, c.rate); len([]rune(got)) > 79 {
			t.Errorf("BarLine is %d columns: %q", len([]rune(got)), got)
		}
	}
}
