package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/server/devca"
	"github.com/xchat-im/xchat/spec/wire"
)

func TestParseSizes(t *testing.T) {
	got, err := ParseSizes("1MiB, 64MiB,1GiB,512,16k,2KiB")
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{1 << 20, 64 << 20, 1 << 30, 512, 16 << 10, 2 << 10}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"", "0", "-1MiB", "1TiB", "MiB", "1.5MiB", "1MiB,"} {
		if _, err := ParseSizes(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestFilesOptionsValidate(t *testing.T) {
	for _, mod := range []func(*FilesOptions){
		func(o *FilesOptions) { o.Sizes = nil },
		func(o *FilesOptions) { o.Sizes = []int64{wire.MaxFileSize + 1} },
		func(o *FilesOptions) { o.Parallel = 0 },
		func(o *FilesOptions) { o.SampleEvery = 0 },
	} {
		o := DefaultFilesOptions()
		mod(&o)
		if err := o.validate(); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	o := DefaultFilesOptions()
	if err := o.validate(); err != nil {
		t.Error(err)
	}
}

// TestRawQUIC moves bytes up and down the in-process raw QUIC peer.
func TestRawQUIC(t *testing.T) {
	dir := t.TempDir()
	ca, err := devca.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Issue(dir, "a.bench.test"); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	p, err := startRawPeer(ctx, nil, devca.DomainCertPath(dir, "a.bench.test"), devca.DomainKeyPath(dir, "a.bench.test"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	conf, err := clientTLS("a.bench.test", devca.CertPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	qc, err := quic.DialAddr(ctx, p.addr, conf, &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer qc.CloseWithError(0, "")
	for _, n := range []int64{1, wire.BlobPartSize + 7, 3 << 20} {
		for _, up := range []bool{true, false} {
			if d, err := rawTransfer(ctx, qc, up, n); err != nil || d <= 0 {
				t.Errorf("%d bytes, up %v: %v, %v", n, up, d, err)
			}
		}
	}
	// A peer that cannot start, ends or says something else than ready is
	// an error, not a hang.
	if _, err := startRawPeer(ctx, []string{filepath.Join(dir, "nosuch")}, "", ""); err == nil {
		t.Error("a missing peer command started")
	}
	if _, err := os.Stat("/bin/sh"); err == nil {
		for _, script := range []string{"exit 3", "echo nope; exec sleep 60", "echo bad >&2"} {
			if _, err := startRawPeer(ctx, []string{"/bin/sh", "-c", script}, "", ""); err == nil {
				t.Errorf("peer %q started", script)
			}
		}
	}
}

func TestMemWatch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "heap profile: 1: 2 [3: 4] @ heap/1048576\n# runtime.MemStats\n# Alloc = 5\n# HeapInuse = 123456\n# Stack = 1\n")
	}))
	defer srv.Close()
	var m memWatch
	m.add("self", 0, "")
	m.add("child", os.Getpid(), strings.TrimPrefix(srv.URL, "http://"))
	ctx := context.Background()
	start := m.begin(ctx)
	if start["self"] <= 0 || start["child"] <= 0 {
		t.Fatalf("start %v", start)
	}
	buf := make([]byte, 32<<20) // heap that the peak must see
	m.sample(ctx)
	peaks := m.end(start)
	_ = buf[len(buf)-1]
	if len(peaks) != 2 || peaks[0].PeakHeapBytes < 32<<20 || peaks[0].PeakRSSBytes < peaks[0].StartRSSBytes || peaks[1].PeakHeapBytes != 123456 {
		t.Errorf("peaks %+v", peaks)
	}
	// A phase starts from the last sample, not from the previous peak.
	if p := m.end(m.begin(ctx)); p[1].PeakHeapBytes != 123456 {
		t.Errorf("second phase %+v", p)
	}
}

func TestFreeTCPPorts(t *testing.T) {
	base, err := freeTCPPorts(2)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
		if err != nil {
			t.Fatalf("port %d: %v", base+i, err)
		}
		ln.Close()
	}
}

// TestFiles runs the files scenario with a 1 MiB and a 3 MiB file, on the
// embedded store, with the client library and with wire requests, and
// with the client library on PostgreSQL.
func TestFiles(t *testing.T) {
	xchatd := xchatdBinary(t)
	for _, c := range []struct{ name, client, db string }{
		{"library", "library", ""},
		{"wire", "wire", ""},
		{"postgres", "library", os.Getenv("TEST_DATABASE_URL")},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if c.name == "postgres" && c.db == "" {
				t.Skip("TEST_DATABASE_URL not set")
			}
			o := DefaultFilesOptions()
			o.Xchatd, o.Client, o.DB = xchatd, c.client, c.db
			o.Sizes, o.MinBytes = []int64{1 << 20, 3 << 20}, 2<<20
			res, err := Files(testCtx(t), o)
			if err != nil {
				t.Fatal(err)
			}
			checkFiles(t, res, 2)
		})
	}
}

func checkFiles(t *testing.T, res *FilesResult, sizes int) {
	t.Helper()
	var table strings.Builder
	res.WriteTable(&table)
	t.Logf("\n%s", table.String())
	if res.Failed() || len(res.Sizes) != sizes {
		t.Fatalf("errors %v, %d sizes", res.Errors, len(res.Sizes))
	}
	for _, s := range res.Sizes {
		if len(s.Transfers) != 5 || s.BlobBytes < s.FileBytes || s.Repeats < 1 {
			t.Errorf("size %+v", s)
		}
		for _, x := range s.Transfers {
			if x.Count != s.Repeats || x.MBps <= 0 || (x.Path != pathRaw && x.OfRaw <= 0) {
				t.Errorf("%d bytes: %+v", s.FileBytes, x)
			}
		}
		if len(s.Memory) != 3 {
			t.Fatalf("memory %+v", s.Memory)
		}
		for _, m := range s.Memory {
			if m.PeakRSSBytes <= 0 || m.PeakHeapBytes <= 0 {
				t.Errorf("memory %+v", m)
			}
		}
	}
}
