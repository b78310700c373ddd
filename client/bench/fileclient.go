package bench

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/xchat-im/xchat/client"
	"github.com/xchat-im/xchat/spec/wire"
)

// libraryDriver moves files with the reference client library: a sender
// of the first server sends each file to a group with a member of the
// first server and one of the second (Client.SendGroupFile: encryption,
// upload, the reference in an MLS message), and each member downloads it
// (Client.DownloadFile: download, decryption, verification, the
// plaintext written to disk).
type libraryDriver struct {
	dir      string
	sender   *client.Client
	group    []byte
	members  [2]*libraryMember // of the first server, of the second
	stop     context.CancelFunc
	wg       sync.WaitGroup
	closers  []func()
	sequence int
}

// libraryMember is a member that receives files and downloads them.
type libraryMember struct {
	p        *client.Profile
	recv, dl *client.Client
	mu       sync.Mutex
	refs     map[string]wire.FileRef // received, by file id
	got      chan struct{}           // signalled on every reference
	recvErr  error
}

func newLibraryDriver(ctx context.Context, env *filesEnv) (fileDriver, error) {
	d := &libraryDriver{dir: env.dir}
	ok := false
	defer func() {
		if !ok {
			d.close()
		}
	}()
	var runID [3]byte
	crand.Read(runID[:])
	connect := func(name string, s *childServer, prof **client.Profile, clients ...**client.Client) (string, error) {
		p, err := client.OpenProfile(filepath.Join(env.dir, "profile-"+name))
		if err != nil {
			return "", err
		}
		*prof = p
		d.closers = append(d.closers, func() { p.Close() })
		address := fmt.Sprintf("files-%x-%s@%s", runID, name, s.domain)
		if _, err := client.Register(ctx, p, client.RegisterOptions{Address: address, Server: s.addr, CAFile: s.caFile}); err != nil {
			return "", fmt.Errorf("register %s: %w", address, err)
		}
		for _, c := range clients {
			if *c, err = client.Connect(ctx, p); err != nil {
				return "", err
			}
			d.closers = append(d.closers, func() { (*c).Close() })
		}
		return address, nil
	}
	var senderProfile *client.Profile
	if _, err := connect("sender", env.servers[0], &senderProfile, &d.sender); err != nil {
		return nil, err
	}
	var addrs []string
	for i, s := range env.servers[:2] {
		m := &libraryMember{refs: map[string]wire.FileRef{}, got: make(chan struct{}, 1)}
		// The connection that receives comes last: a device's newest
		// connection gets its push stream.
		a, err := connect(fmt.Sprintf("member%d", i), s, &m.p, &m.dl, &m.recv)
		if err != nil {
			return nil, err
		}
		d.members[i] = m
		addrs = append(addrs, a)
	}
	rctx, stop := context.WithCancel(context.Background())
	d.stop = stop
	for _, m := range d.members {
		d.wg.Go(func() { m.receive(rctx) })
	}
	var err error
	if d.group, err = d.sender.CreateGroup(ctx, "files", addrs); err != nil {
		return nil, fmt.Errorf("create group: %w", err)
	}
	// Both members join (their Welcome) before the first file.
	for i, m := range d.members {
		for deadline := time.Now().Add(30 * time.Second); ; {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			gs, err := client.ProfileGroups(ctx, m.p)
			if err == nil && len(gs) == 1 {
				break
			}
			m.mu.Lock()
			rerr := m.recvErr
			m.mu.Unlock()
			if rerr != nil {
				return nil, fmt.Errorf("member %s: receive: %w", addrs[i], rerr)
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("member %s did not join the group in 30 s (%d groups, %v)", addrs[i], len(gs), err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	ok = true
	return d, nil
}

// receive runs m's receive loop until ctx ends, keeping the file
// references that arrive.
func (m *libraryMember) receive(ctx context.Context) {
	err := m.recv.Receive(ctx, client.ReceiveOptions{
		Wait: 24 * time.Hour,
		OnMessage: func(msg client.Message) {
			if msg.File == nil {
				return
			}
			m.mu.Lock()
			m.refs[client.FileID(msg.File)] = *msg.File
			m.mu.Unlock()
			select {
			case m.got <- struct{}{}:
			default:
			}
		},
	})
	if err != nil && ctx.Err() == nil {
		m.mu.Lock()
		m.recvErr = err
		m.mu.Unlock()
		select {
		case m.got <- struct{}{}:
		default:
		}
	}
}

// waitRef waits until m received the reference of the file id.
func (m *libraryMember) waitRef(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		m.mu.Lock()
		_, ok := m.refs[id]
		err := m.recvErr
		m.mu.Unlock()
		switch {
		case ok:
			return nil
		case err != nil:
			return fmt.Errorf("receive: %w", err)
		}
		select {
		case <-m.got:
		case <-ctx.Done():
			return fmt.Errorf("the file message did not arrive: %w", ctx.Err())
		}
	}
}

func (d *libraryDriver) describe() string {
	return "reference client library (SendGroupFile, DownloadFile: encryption, decryption and the plaintext on disk included)"
}

// prepare writes a file of size random bytes.
func (d *libraryDriver) prepare(_ context.Context, size int64) (*fileHandle, error) {
	d.sequence++
	path := filepath.Join(d.dir, fmt.Sprintf("file-%d.bin", d.sequence))
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	var seed [32]byte
	crand.Read(seed[:])
	_, err = io.CopyN(f, rand.NewChaCha8(seed), size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	return &fileHandle{size: size, path: path}, nil
}

// upload sends the file to the group: the time of SendGroupFile.
func (d *libraryDriver) upload(ctx context.Context, f *fileHandle) (time.Duration, error) {
	start := time.Now()
	sent, err := d.sender.SendGroupFile(ctx, d.group, client.SendFileOptions{Path: f.path})
	if err != nil {
		return 0, err
	}
	took := time.Since(start)
	f.ref = sent.Ref
	os.Remove(f.path)
	return took, nil
}

// download waits for the member's file message (not timed), then
// downloads the file: the time of DownloadFile.
func (d *libraryDriver) download(ctx context.Context, f *fileHandle, federated bool) (time.Duration, error) {
	m := d.members[0]
	if federated {
		m = d.members[1]
	}
	id := client.FileID(&f.ref)
	if err := m.waitRef(ctx, id); err != nil {
		return 0, err
	}
	out := f.path + ".a.out"
	if federated {
		out = f.path + ".b.out"
	}
	start := time.Now()
	path, _, err := m.dl.DownloadFile(ctx, id, client.DownloadOptions{Out: out})
	if err != nil {
		return 0, err
	}
	took := time.Since(start)
	defer os.Remove(path)
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	if fi.Size() != f.size {
		return 0, fmt.Errorf("downloaded %d bytes, want %d", fi.Size(), f.size)
	}
	return took, nil
}

// rateLimited is 0: the library does not retry a rate-limited range;
// its download fails.
func (d *libraryDriver) rateLimited() int64 { return 0 }

// done removes the plaintext file (the downloads removed their outputs).
func (d *libraryDriver) done(f *fileHandle) { os.Remove(f.path) }

func (d *libraryDriver) close() {
	if d.stop != nil {
		d.stop()
	}
	d.wg.Wait()
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	d.closers = nil
}
