package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/spec/wire"
)

// The raw QUIC peer is the ceiling of the files scenario: the same QUIC
// library, TLS 1.3 with the same certificate and ALPN, on loopback, with
// nothing but the bytes on one stream. Each transfer is one
// bidirectional stream that starts with a 9-byte header, an operation and
// a byte count n (big-endian): rawUpload, then the client sends n bytes
// and the peer answers one byte once it has read them all; rawDownload,
// then the peer sends n bytes and closes.
const (
	rawUpload   = 'u'
	rawDownload = 'd'
	rawHeader   = 9
)

// rawBuf is what the raw peer and the client send: zeros, so that making
// the bytes costs nothing.
var rawBuf = make([]byte, wire.BlobPartSize)

// ServeRawQUIC serves raw QUIC transfers on pc with the certificate and
// key in certFile and keyFile until ctx ends. ready, when not nil, is
// called once it accepts connections.
func ServeRawQUIC(ctx context.Context, pc net.PacketConn, certFile, keyFile string, ready func()) error {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return err
	}
	tr := &quic.Transport{Conn: pc}
	defer tr.Close()
	ln, err := tr.Listen(&tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{wire.ALPN}, MinVersion: tls.VersionTLS13},
		&quic.Config{MaxIdleTimeout: wire.IdleTimeout})
	if err != nil {
		return err
	}
	defer ln.Close()
	if ready != nil {
		ready()
	}
	for {
		qc, err := ln.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		go func() {
			for {
				st, err := qc.AcceptStream(ctx)
				if err != nil {
					return
				}
				go serveRawStream(st)
			}
		}()
	}
}

func serveRawStream(st *quic.Stream) {
	defer st.Close()
	var h [rawHeader]byte
	if _, err := io.ReadFull(st, h[:]); err != nil {
		st.CancelRead(0)
		return
	}
	n := int64(binary.BigEndian.Uint64(h[1:]))
	switch h[0] {
	case rawUpload:
		if _, err := io.CopyN(io.Discard, st, n); err != nil {
			st.CancelWrite(0)
			return
		}
		st.Write([]byte{1})
	case rawDownload:
		// The client closes its side after the header: read to that end
		// rather than send STOP_SENDING, which could reach the client
		// before its close and fail it.
		if _, err := io.Copy(io.Discard, io.LimitReader(st, 1)); err != nil {
			st.CancelWrite(0)
			return
		}
		if err := writeZeros(st, n); err != nil {
			st.CancelWrite(0)
		}
	default:
		st.CancelRead(0)
		st.CancelWrite(0)
	}
}

func writeZeros(w io.Writer, n int64) error {
	for n > 0 {
		k := min(n, int64(len(rawBuf)))
		if _, err := w.Write(rawBuf[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// rawTransfer moves n bytes over one new stream of qc, up (client to
// peer) or down, and returns how long it took, from opening the stream to
// the last byte (up: to the peer's answer that it read them all).
func rawTransfer(ctx context.Context, qc *quic.Conn, up bool, n int64) (time.Duration, error) {
	start := time.Now()
	st, err := qc.OpenStreamSync(ctx)
	if err != nil {
		return 0, err
	}
	stop := context.AfterFunc(ctx, func() { st.CancelRead(0); st.CancelWrite(0) })
	defer stop()
	var h [rawHeader]byte
	h[0] = rawDownload
	if up {
		h[0] = rawUpload
	}
	binary.BigEndian.PutUint64(h[1:], uint64(n))
	if _, err := st.Write(h[:]); err != nil {
		return 0, err
	}
	if up {
		if err := writeZeros(st, n); err != nil {
			return 0, err
		}
		if err := st.Close(); err != nil {
			return 0, err
		}
		var ack [1]byte
		if _, err := io.ReadFull(st, ack[:]); err != nil {
			return 0, fmt.Errorf("raw upload: %w", err)
		}
		return time.Since(start), nil
	}
	if err := st.Close(); err != nil {
		return 0, err
	}
	got, err := io.Copy(io.Discard, st)
	if err != nil {
		return 0, err
	}
	if got != n {
		return 0, fmt.Errorf("raw download: %d bytes of %d", got, n)
	}
	return time.Since(start), nil
}

// rawPeer is a running raw QUIC peer: a child process, or a goroutine of
// this process.
type rawPeer struct {
	addr    string
	cmd     *exec.Cmd     // the child, or nil
	exited  chan struct{} // closed when the child was waited for
	stop    func()        // ends the in-process peer
	stopped chan struct{} // closed when the in-process peer returned
}

// firstLine is a writer that sends the first line written to it on c,
// and discards the rest.
type firstLine struct {
	c    chan<- string
	b    []byte
	sent bool
}

func (w *firstLine) Write(p []byte) (int, error) {
	if !w.sent {
		w.b = append(w.b, p...)
		if i := bytes.IndexByte(w.b, '\n'); i >= 0 {
			w.c <- string(w.b[:i])
			w.sent, w.b = true, nil
		}
	}
	return len(p), nil
}

// startRawPeer starts the raw QUIC peer on a free loopback port with the
// certificate and key of certFile and keyFile: as a child process running
// command (with --listen, --cert and --key added) when command is not
// empty, else in this process.
func startRawPeer(ctx context.Context, command []string, certFile, keyFile string) (*rawPeer, error) {
	return startPeer(ctx, command, certFile, keyFile, ServeRawQUIC)
}

// peerServe is how an in-process peer serves: on pc with the certificate
// and key of certFile and keyFile until ctx ends, calling ready once it
// accepts connections.
type peerServe func(ctx context.Context, pc net.PacketConn, certFile, keyFile string, ready func()) error

// startPeer starts a peer process on a free loopback port with the
// certificate and key of certFile and keyFile: as a child process running
// command (with --listen, --cert and --key added, printing "ready" once it
// listens) when command is not empty, else in this process with serve.
func startPeer(ctx context.Context, command []string, certFile, keyFile string, serve peerServe) (*rawPeer, error) {
	if len(command) == 0 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		pctx, cancel := context.WithCancel(context.Background())
		p := &rawPeer{addr: pc.LocalAddr().String(), stopped: make(chan struct{})}
		ready := make(chan struct{})
		errc := make(chan error, 1)
		go func() {
			defer close(p.stopped)
			defer pc.Close()
			errc <- serve(pctx, pc, certFile, keyFile, func() { close(ready) })
		}()
		select {
		case <-ready:
		case err := <-errc:
			cancel()
			return nil, err
		}
		p.stop = func() { cancel(); <-p.stopped }
		return p, nil
	}
	addr, err := freeUDPAddr()
	if err != nil {
		return nil, err
	}
	args := append(append([]string{}, command[1:]...), "--listen", addr, "--cert", certFile, "--key", keyFile)
	cmd := exec.Command(command[0], args...)
	dieWithParent(cmd)
	stderr := &tailBuffer{max: 4 << 10}
	cmd.Stderr = stderr
	line := make(chan string, 1)
	cmd.Stdout = &firstLine{c: line}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &rawPeer{addr: addr, cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(p.exited) }()
	select {
	case s := <-line:
		if strings.TrimSpace(s) == "ready" {
			return p, nil
		}
		err = fmt.Errorf("peer %s: %s", command[0], stderr)
	case <-p.exited:
		err = fmt.Errorf("peer %s ended: %s", command[0], stderr)
	case <-time.After(30 * time.Second):
		err = errors.New("peer: not ready in 30 s")
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.close()
	return nil, err
}

func (p *rawPeer) close() {
	if p.cmd == nil {
		p.stop()
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}
