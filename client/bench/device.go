package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/hpke"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/spec/wire"
)

// devicesPerSource is how many devices share one local UDP socket and
// source address. A homeserver allows 20 registrations per source address
// in a burst, so on loopback each group of devices uses an address of its
// own in 127.0.0.0/8.
const devicesPerSource = 16

// connectAttempts is how many times a device tries to connect and
// register before the run fails.
const connectAttempts = 3

// device is one connected, registered device.
type device struct {
	idx      int
	mb       wire.Mailbox
	qc       *quic.Conn
	caughtUp chan struct{}

	failed  atomic.Bool // its push stream failed: it receives nothing more
	ackMu   sync.Mutex
	ackIDs  [][]byte
	ackWake chan struct{}
}

func clientTLS(domain, caFile string) (*tls.Config, error) {
	conf := &tls.Config{ServerName: domain, NextProtos: []string{wire.ALPN}, MinVersion: tls.VersionTLS13}
	if caFile != "" {
		pemBytes, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("%s: no PEM certificate", caFile)
		}
		conf.RootCAs = pool
	}
	return conf, nil
}

// sourceIPs returns count local addresses to send from: distinct loopback
// addresses at a random place in 127.0.0.0/8 when the server is on IPv4
// loopback, else the unspecified address.
func sourceIPs(server net.IP, count int) []net.IP {
	ips := make([]net.IP, count)
	if v4 := server.To4(); v4 == nil || !v4.IsLoopback() {
		for i := range ips {
			ips[i] = nil
		}
		return ips
	}
	a := uint32(127)<<24 | uint32(1<<16+rand.IntN(1<<22))
	for i := range ips {
		for byte(a) == 0 || byte(a) == 255 {
			a++
		}
		ip := make(net.IP, 4)
		binary.BigEndian.PutUint32(ip, a)
		ips[i] = ip
		a++
	}
	return ips
}

// connect registers n devices named PREFIX-I@domain (PREFIX-I-rN@domain
// after N failed attempts) on the server at addr, each on a connection of
// its own that reads its push stream, adds them to r.devs and returns them
// once every one has caught up.
func (r *run) connect(ctx context.Context, addr, domain, caFile, prefix string, n int) ([]*device, error) {
	tlsConf, err := clientTLS(domain, caFile)
	if err != nil {
		return nil, err
	}
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	verifier := wire.TokenVerifier(r.token)

	groups := (n + devicesPerSource - 1) / devicesPerSource
	transports := make([]*quic.Transport, groups)
	for g, ip := range sourceIPs(raddr.IP, groups) {
		uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
		if err != nil {
			return nil, fmt.Errorf("local UDP socket on %v: %w", ip, err)
		}
		transports[g] = &quic.Transport{Conn: uc}
		r.devMu.Lock()
		r.closer = append(r.closer, transports[g], uc)
		r.devMu.Unlock()
	}
	qconf := &quic.Config{
		// Longer than a client needs: on a machine that other work keeps
		// busy, a handshake among thousands may wait for the CPU.
		HandshakeIdleTimeout: wire.HandshakeDeadline,
		MaxIdleTimeout:       wire.IdleTimeout,
		KeepAlivePeriod:      wire.KeepAlive,
		MaxIncomingStreams:   -1,
	}
	devs := make([]*device, n)
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range min(n, r.o.ConnectConcurrency) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				// A device whose handshake or registration fails (on a
				// machine too busy to answer in time) tries again, under a
				// new name since the first may have been registered.
				var d *device
				var err error
				address := fmt.Sprintf("%s-%d@%s", prefix, i, domain)
				for attempt := 0; ; attempt++ {
					d, err = r.register(ctx, transports[i/devicesPerSource], raddr, tlsConf, qconf, address, verifier[:])
					if err == nil || attempt == connectAttempts-1 || ctx.Err() != nil {
						break
					}
					r.connectRetries.Add(1)
					select {
					case <-time.After(time.Duration(attempt+1) * time.Second):
					case <-ctx.Done():
					}
					address = fmt.Sprintf("%s-%d-r%d@%s", prefix, i, attempt+1, domain)
				}
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("device %s: %w", address, err); cancel() })
					return
				}
				devs[i] = d
				r.devMu.Lock()
				d.idx = len(r.devs)
				r.devs = append(r.devs, d)
				r.devMu.Unlock()
				r.connected.Add(1)
				go r.receive(d)
				go r.acker(d)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	timeout := time.After(60 * time.Second)
	for _, d := range devs {
		select {
		case <-d.caughtUp:
		case <-timeout:
			return nil, errors.New("the devices' push streams did not catch up in 60 s")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return devs, nil
}

// register dials the server, registers a new device of address on the
// connection (as client.registerDevice does) and sets the account's
// delivery token verifier, so that its envelopes use the token lane.
func (r *run) register(ctx context.Context, tr *quic.Transport, raddr *net.UDPAddr, tlsConf *tls.Config, qconf *quic.Config, address string, verifier []byte) (*device, error) {
	_, sig, err := ed25519.GenerateKey(crand.Reader)
	if err != nil {
		return nil, err
	}
	hk, err := hpke.MLKEM768X25519().GenerateKey()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	qc, err := tr.Dial(ctx, raddr, tlsConf.Clone(), qconf)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	d := &device{qc: qc, caughtUp: make(chan struct{}), ackWake: make(chan struct{}, 1)}
	cs := qc.ConnectionState().TLS
	exp, err := cs.ExportKeyingMaterial(wire.ExporterLabel, nil, 32)
	if err != nil {
		qc.CloseWithError(0, "")
		return nil, err
	}
	var ok wire.RegisterOK
	err = wire.RoundTrip(ctx, qc, &wire.Register{
		Address:   address,
		Keys:      wire.DeviceKeys{SigKey: sig.Public().(ed25519.PublicKey), KEM: wire.KEMXWing, HPKEKey: hk.PublicKey().Bytes()},
		Signature: ed25519.Sign(sig, wire.DeviceAuthMessage(address, 0, exp)),
	}, &ok)
	if err == nil {
		err = wire.RoundTrip(ctx, qc, &wire.SetDeliveryPolicy{Verifiers: [][]byte{verifier}}, &wire.OK{})
	}
	if err != nil {
		qc.CloseWithError(0, "")
		return nil, fmt.Errorf("register: %w", err)
	}
	d.mb = wire.Mailbox{Address: address, Device: ok.Device}
	return d, nil
}

// receive reads d's push stream, matches each delivery with its send and
// queues its id for acknowledgement.
func (r *run) receive(d *device) {
	fail := func(err error) {
		d.failed.Store(true)
		if !r.closed.Load() {
			r.errs.add(errKind("push stream", err), 1)
		}
	}
	st, err := d.qc.AcceptUniStream(context.Background())
	if err != nil {
		fail(err)
		return
	}
	caught := false
	for {
		p, err := wire.ReadFrame(st, wire.MaxFrame)
		if err != nil {
			if errors.Is(err, wire.ErrEndOfStream) || errors.Is(err, io.EOF) {
				err = errors.New("ended")
			}
			fail(err)
			return
		}
		f, err := wire.DecodePush(p)
		if err != nil {
			fail(err)
			return
		}
		switch f := f.(type) {
		case *wire.CaughtUp:
			if !caught {
				caught = true
				close(d.caughtUp)
			}
		case *wire.Deliver:
			now := time.Now()
			ids := make([][]byte, len(f.Deliveries))
			for i, x := range f.Deliveries {
				var id [16]byte
				copy(id[:], x.ID)
				r.tr.deliver(id, d.idx, now)
				ids[i] = x.ID
			}
			r.acksOut.Add(int64(len(ids)))
			d.ackMu.Lock()
			d.ackIDs = append(d.ackIDs, ids...)
			d.ackMu.Unlock()
			select {
			case d.ackWake <- struct{}{}:
			default:
			}
		}
	}
}

// acker acknowledges d's deliveries in batches, one request at a time:
// whatever arrives while a request is out goes in the next.
func (r *run) acker(d *device) {
	for {
		select {
		case <-d.ackWake:
		case <-r.done:
			return
		}
		for {
			d.ackMu.Lock()
			k := min(len(d.ackIDs), wire.MaxIDsPerAck)
			ids := d.ackIDs[:k:k]
			d.ackIDs = d.ackIDs[k:]
			d.ackMu.Unlock()
			if k == 0 {
				break
			}
			ctx, cancel := context.WithTimeout(context.Background(), wire.RequestDeadline)
			err := wire.RoundTrip(ctx, d.qc, &wire.Ack{IDs: ids}, &wire.OK{})
			cancel()
			r.acksOut.Add(-int64(k))
			if err != nil && !r.closed.Load() {
				r.errs.add(errKind("ack", err), int64(k))
			}
		}
	}
}

// close ends the devices' connections and the sockets.
func (r *run) close() {
	if !r.closed.CompareAndSwap(false, true) {
		return
	}
	close(r.done)
	r.devMu.Lock()
	defer r.devMu.Unlock()
	for _, d := range r.devs {
		if d != nil {
			d.qc.CloseWithError(0, "benchmark done")
		}
	}
	for _, c := range r.closer {
		c.Close()
	}
}
