package clierr

import (
	"errors"
	"testing"

	"github.com/spf13/cobra"
)

func TestOneLine(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain": "plain",
		"migrate: failed to connect to `user=x`:\n\t127.0.0.1:1: refused\n\t127.0.0.1:1: refused\n": "migrate: failed to connect to `user=x`; 127.0.0.1:1: refused; 127.0.0.1:1: refused",
		"a\r\nb": "a; b",
	} {
		if got := OneLine(in); got != want {
			t.Errorf("OneLine(%q) = %q, want %q", in, got, want)
		}
	}
}

// A usage error names the help to read, keeps cobra's suggestion on the
// line, and keeps the original error in the chain.
func TestUsageAndTrackRun(t *testing.T) {
	t.Parallel()
	var started bool
	root := &cobra.Command{Use: "tool", SilenceErrors: true, SilenceUsage: true}
	root.AddCommand(&cobra.Command{Use: "group", Args: cobra.ExactArgs(1), RunE: func(*cobra.Command, []string) error {
		return errors.New("ran")
	}})
	TrackRun(root, &started)

	root.SetArgs([]string{"gruop"})
	cmd, err := root.ExecuteC()
	if started || err == nil {
		t.Fatalf("a mistyped command: started %v, err %v", started, err)
	}
	if got, want := Usage(cmd, err).Error(), `unknown command "gruop" for "tool" (did you mean group?); see 'tool --help'`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if !errors.Is(Usage(cmd, err), err) {
		t.Error("the usage error does not wrap cobra's")
	}

	root.SetArgs([]string{"group"})
	cmd, err = root.ExecuteC()
	if started || err == nil {
		t.Fatalf("a missing argument: started %v, err %v", started, err)
	}
	if got, want := Usage(cmd, err).Error(), "accepts 1 arg(s), received 0; see 'tool group --help'"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}

	root.SetArgs([]string{"group", "x"})
	if _, err = root.ExecuteC(); !started || err == nil || err.Error() != "ran" {
		t.Fatalf("a valid command: started %v, err %v", started, err)
	}
}

func TestExitStatus(t *testing.T) {
	t.Parallel()
	corrupt := errors.New("chunk 3: message authentication failed")
	for _, c := range []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{errors.New("x"), ExitError},
		{WithStatus(ExitCorrupt, corrupt), ExitCorrupt},
		{Explain(WithStatus(ExitCorrupt, corrupt), "the file did not verify"), ExitCorrupt},
	} {
		if got := ExitStatus(c.err); got != c.want {
			t.Errorf("ExitStatus(%v) = %d, want %d", c.err, got, c.want)
		}
	}
	if err := WithStatus(ExitCorrupt, corrupt); err.Error() != corrupt.Error() || !errors.Is(err, corrupt) {
		t.Errorf("WithStatus changed the error: %v", err)
	}
}
