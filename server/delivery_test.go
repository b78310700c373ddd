package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"database/sql"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/server/store/sqlite"
	"github.com/xchat-im/xchat/spec/wire"
)

func TestSendAndReceive(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	alice := register(t, s, "alice@a.test")
	bob := register(t, s, "Bob@A.test")

	if err := connect(t, alice).Send(servertest.Context(t), "bob@a.test", "hello bob"); err != nil {
		t.Fatal(err)
	}
	got := receiveAll(t, bob)
	if len(got) != 1 || got[0].From != "alice@a.test" || got[0].Text != "hello bob" || got[0].To != "bob@a.test" {
		t.Fatalf("bob got %+v", got)
	}
	if !got[0].RequestLane {
		t.Error("a first contact should arrive in the request lane")
	}
	// Bob's reply uses the token Alice sent along, and so does her next one.
	if err := connect(t, bob).Send(servertest.Context(t), "alice@a.test", "hi alice"); err != nil {
		t.Fatal(err)
	}
	got = receiveAll(t, alice)
	if len(got) != 1 || got[0].From != "bob@a.test" || got[0].Text != "hi alice" || got[0].RequestLane {
		t.Fatalf("alice got %+v", got)
	}
	if err := connect(t, alice).Send(servertest.Context(t), "bob@a.test", "second"); err != nil {
		t.Fatal(err)
	}
	got = receiveAll(t, bob)
	if len(got) != 1 || got[0].Text != "second" || got[0].RequestLane {
		t.Fatalf("bob got %+v", got)
	}
}

// An envelope for an offline recipient survives a graceful restart, is
// delivered when the recipient connects, and is gone after acknowledgement.
func TestOfflineDeliverySurvivesRestart(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	alice := register(t, s, "alice@a.test")
	bob := register(t, s, "bob@a.test")
	if err := connect(t, alice).Send(servertest.Context(t), "bob@a.test", "while you were out"); err != nil {
		t.Fatal(err)
	}
	s.Restart()
	got := receiveAll(t, bob)
	if len(got) != 1 || got[0].Text != "while you were out" {
		t.Fatalf("bob got %+v", got)
	}
	// Acknowledged: a new connection gets nothing, and the store holds nothing.
	if again := receiveAll(t, bob); len(again) != 0 {
		t.Fatalf("delivered again after ack: %+v", again)
	}
	s.Stop()
	st, err := sqlite.Open(servertest.Context(t), s.DBPath(), store.DefaultLimits(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	left, err := st.Pending(servertest.Context(t), store.Mailbox{Address: "bob@a.test", Device: 1}, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("%d envelopes left in the store after ack", len(left))
	}
}

// The stored envelope holds nothing that names its sender: no column of
// the mailbox row contains the sender's address, its user part or its
// signature key.
func TestStoredEnvelopeHidesSender(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	sender := register(t, s, "zelda-sender@a.test")
	register(t, s, "bob@a.test")
	if err := connect(t, sender).Send(servertest.Context(t), "bob@a.test", "sealed"); err != nil {
		t.Fatal(err)
	}
	id, err := sender.Identity(servertest.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	needles := [][]byte{[]byte("zelda-sender"), []byte("zelda"), []byte(id.SigKey.Public().(ed25519.PublicKey))}

	db, err := sql.Open("sqlite", "file:"+s.DBPath()+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT * FROM mailbox`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	n := 0
	for rows.Next() {
		n++
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			var b []byte
			switch v := v.(type) {
			case []byte:
				b = v
			case string:
				b = []byte(v)
			default:
				continue
			}
			for _, needle := range needles {
				if bytes.Contains(b, needle) {
					t.Errorf("mailbox column %s holds the sender (%q)", cols[i], needle)
				}
			}
		}
	}
	if n != 2 {
		t.Fatalf("%d mailbox rows, want 2 (the Welcome to the new chat, then the message)", n)
	}
	// And the log never names the sender in connection with a send.
	for _, line := range bytes.Split(s.Logs(), []byte("\n")) {
		if bytes.Contains(line, []byte("send")) && bytes.Contains(line, []byte("zelda")) {
			t.Errorf("log line names the sender of a send: %s", line)
		}
	}
}

// Unacknowledged envelopes are pushed again on the next connection; each
// connection pushes each envelope once.
func TestRedeliveryUntilAck(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	r := servertest.Dial(t, s)
	a := servertest.NewDevice(t, "alice@a.test")
	if err := r.Register(a, nil); err != nil {
		t.Fatal(err)
	}
	b := servertest.NewDevice(t, "bob@a.test")
	rb := servertest.Dial(t, s)
	if err := rb.Register(b, nil); err != nil {
		t.Fatal(err)
	}
	id := servertest.RandomID()
	var ok wire.SendOK
	env := wire.Envelope{ID: id, To: wire.Mailbox{Address: "bob@a.test", Device: 1}, Sealed: servertest.SealedOfLen(256)}
	if err := r.Request(&wire.Send{Envelopes: []wire.Envelope{env}}, &ok); err != nil || ok.Results[0] != wire.CodeOK {
		t.Fatalf("send: %v %v", err, ok.Results)
	}
	// The same id again is accepted and not stored twice.
	if err := r.Request(&wire.Send{Envelopes: []wire.Envelope{env}}, &ok); err != nil || ok.Results[0] != wire.CodeOK {
		t.Fatalf("resend: %v %v", err, ok.Results)
	}
	rb.QC.CloseWithError(0, "")
	rb1 := servertest.Dial(t, s)
	if err := rb1.Authenticate(b); err != nil {
		t.Fatal(err)
	}
	first := pushed(t, rb1)
	if len(first) != 1 || !bytes.Equal(first[0].ID, id) || !bytes.Equal(first[0].Sealed, env.Sealed) || first[0].Lane != 1 {
		t.Fatalf("first connection got %+v", first)
	}
	// Not acknowledged: a new connection gets it again.
	rb2 := servertest.Dial(t, s)
	if err := rb2.Authenticate(b); err != nil {
		t.Fatal(err)
	}
	second := pushed(t, rb2)
	if len(second) != 1 || !bytes.Equal(second[0].ID, id) {
		t.Fatalf("second connection got %+v", second)
	}
	if err := rb2.Request(&wire.Ack{IDs: [][]byte{id}}, &wire.OK{}); err != nil {
		t.Fatal(err)
	}
	rb3 := servertest.Dial(t, s)
	if err := rb3.Authenticate(b); err != nil {
		t.Fatal(err)
	}
	if third := pushed(t, rb3); len(third) != 0 {
		t.Fatalf("pushed after ack: %+v", third)
	}
}

// pushed reads the push stream up to the caught-up frame.
func pushed(t *testing.T, r *servertest.Raw) []wire.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(servertest.Context(t), 30*time.Second)
	defer cancel()
	st, err := r.QC.AcceptUniStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []wire.Delivery
	for {
		b, err := wire.ReadFrame(st, wire.MaxFrame)
		if err != nil {
			t.Fatal(err)
		}
		f, err := wire.DecodePush(b)
		if err != nil {
			t.Fatal(err)
		}
		switch f := f.(type) {
		case *wire.CaughtUp:
			return out
		case *wire.Deliver:
			out = append(out, f.Deliveries...)
		}
	}
}

// Pushes reach an online device without a new connection.
func TestPushToOnlineDevice(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	ra, rb := servertest.Dial(t, s), servertest.Dial(t, s)
	a, b := servertest.NewDevice(t, "alice@a.test"), servertest.NewDevice(t, "bob@a.test")
	if err := ra.Register(a, nil); err != nil {
		t.Fatal(err)
	}
	if err := rb.Register(b, nil); err != nil {
		t.Fatal(err)
	}
	st, err := rb.QC.AcceptUniStream(servertest.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	st.SetReadDeadline(time.Now().Add(30 * time.Second))
	readPush := func() any {
		p, err := wire.ReadFrame(st, wire.MaxFrame)
		if err != nil {
			t.Fatal(err)
		}
		f, err := wire.DecodePush(p)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	if _, ok := readPush().(*wire.CaughtUp); !ok {
		t.Fatal("first push frame is not caught-up for an empty mailbox")
	}
	for i := range 3 {
		env := wire.Envelope{ID: servertest.RandomID(), To: wire.Mailbox{Address: "bob@a.test", Device: 1}, Sealed: servertest.SealedOfLen(512)}
		var ok wire.SendOK
		if err := ra.Request(&wire.Send{Envelopes: []wire.Envelope{env}}, &ok); err != nil || ok.Results[0] != 0 {
			t.Fatalf("send %d: %v %v", i, err, ok.Results)
		}
		d, isDeliver := readPush().(*wire.Deliver)
		if !isDeliver || len(d.Deliveries) != 1 || !bytes.Equal(d.Deliveries[0].ID, env.ID) {
			t.Fatalf("push %d: %+v", i, d)
		}
	}
}
