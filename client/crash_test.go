package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/xchat-im/xchat/client"
	"github.com/xchat-im/xchat/server/servertest"
)

// TestMain lets a test re-run this binary as a client process that kills
// itself at a chosen point of receiving.
func TestMain(m *testing.M) {
	if point := os.Getenv("XCHAT_TEST_CRASH_AT"); point != "" {
		os.Exit(crashChild(point, os.Getenv("XCHAT_TEST_PROFILE")))
	}
	os.Exit(m.Run())
}

func crashChild(point, dir string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := client.OpenProfile(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	c, err := client.Connect(ctx, p)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	kill := func() { syscall.Kill(os.Getpid(), syscall.SIGKILL) }
	switch point {
	case "upload", "queued":
		o := client.SendFileOptions{Path: os.Getenv("XCHAT_TEST_FILE")}
		if point == "upload" {
			o.Progress = func(p client.FileProgress) {
				if p.Done >= p.Total/2 {
					kill()
				}
			}
		} else {
			client.SetQueueHook(c, kill)
		}
		_, err := c.SendFile(ctx, "bob@a.test", o)
		fmt.Fprintln(os.Stderr, "child was not killed:", err)
		return 3
	case "receive":
		client.SetHooks(c, kill, nil)
	case "store":
		// The first envelope is the Welcome to the direct chat; the
		// second carries the message.
		n := 0
		client.SetHooks(c, nil, func() {
			if n++; n == 2 {
				kill()
			}
		})
	}
	err = c.Receive(ctx, client.ReceiveOptions{Wait: time.Second})
	fmt.Fprintln(os.Stderr, "child was not killed:", err)
	return 3
}

// runCrashChild runs the client in a child process that is killed at point,
// and checks that it died of SIGKILL. env is added to the child's
// environment.
func runCrashChild(t *testing.T, point, dir string, env ...string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "XCHAT_TEST_CRASH_AT="+point, "XCHAT_TEST_PROFILE="+dir)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v\n%s", err, out)
	}
}

func setup(t *testing.T) (s *servertest.Server, aliceDir, bobDir string) {
	s = servertest.Start(t, servertest.Options{})
	aliceDir, bobDir = t.TempDir(), t.TempDir()
	for _, r := range []struct{ dir, addr string }{{aliceDir, "alice@a.test"}, {bobDir, "bob@a.test"}} {
		p, err := client.OpenProfile(r.dir)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Register(t.Context(), p, client.RegisterOptions{Address: r.addr, Server: s.Addr, CAFile: s.CAFile}); err != nil {
			t.Fatal(err)
		}
		p.Close()
	}
	p, err := client.OpenProfile(aliceDir)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := client.Connect(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Send(t.Context(), "bob@a.test", "survive the crash"); err != nil {
		t.Fatal(err)
	}
	return s, aliceDir, bobDir
}

func receive(t *testing.T, dir string) (newMessages []client.Message, stored []client.Message) {
	t.Helper()
	p, err := client.OpenProfile(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := client.Connect(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Receive(t.Context(), client.ReceiveOptions{
		Wait:      200 * time.Millisecond,
		OnMessage: func(m client.Message) { newMessages = append(newMessages, m) },
	})
	if err != nil {
		t.Fatal(err)
	}
	stored, err = p.Messages(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return newMessages, stored
}

func storedMessages(t *testing.T, dir string) []client.Message {
	p, err := client.OpenProfile(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ms, err := p.Messages(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// A client killed after receiving an envelope and before storing it loses
// nothing: the envelope was not acknowledged, so it is delivered again.
func TestClientKilledBeforeStoringLosesNothing(t *testing.T) {
	t.Parallel()
	_, _, bobDir := setup(t)
	runCrashChild(t, "receive", bobDir)
	if ms := storedMessages(t, bobDir); len(ms) != 0 {
		t.Fatalf("stored %d messages before the kill point", len(ms))
	}
	got, stored := receive(t, bobDir)
	if len(got) != 1 || got[0].Text != "survive the crash" || got[0].From != "alice@a.test" || len(stored) != 1 {
		t.Fatalf("after restart: new %+v, stored %+v", got, stored)
	}
}

// A client killed after storing and before acknowledging gets the envelope
// again and drops the duplicate by envelope id.
func TestClientKilledBeforeAckDropsDuplicate(t *testing.T) {
	t.Parallel()
	_, _, bobDir := setup(t)
	runCrashChild(t, "store", bobDir)
	if ms := storedMessages(t, bobDir); len(ms) != 1 {
		t.Fatalf("stored %d messages before the kill, want 1", len(ms))
	}
	got, stored := receive(t, bobDir)
	if len(got) != 0 || len(stored) != 1 {
		t.Fatalf("after restart: new %+v, stored %d (duplicate not dropped)", got, len(stored))
	}
	// It was acknowledged this time: nothing more arrives.
	if got, _ := receive(t, bobDir); len(got) != 0 {
		t.Fatalf("delivered again after ack: %+v", got)
	}
}
