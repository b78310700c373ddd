// Package clierr shapes the errors that xchat and xchatd print: one line,
// a usage error pointing at the help to read, whether a command had
// started when it failed, and the exit status.
package clierr

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// Explained is an error in a user's words: what went wrong and what to do.
// The error it explains stays in the chain for -v and errors.Is.
type Explained struct {
	Msg string
	Err error
}

func (e *Explained) Error() string { return e.Msg }
func (e *Explained) Unwrap() error { return e.Err }

// Explain returns an *Explained with a formatted message that explains err.
func Explain(err error, format string, args ...any) error {
	return &Explained{Msg: fmt.Sprintf(format, args...), Err: err}
}

// Usage completes an error that cobra or an argument validator returned
// before cmd ran with where to read its usage; cobra's suggestions for a
// mistyped command, which come on further lines, are put on the line.
func Usage(cmd *cobra.Command, err error) error {
	msg := err.Error()
	if head, alts, ok := strings.Cut(msg, "\n\nDid you mean this?\n"); ok {
		msg = fmt.Sprintf("%s (did you mean %s?)", head, strings.Join(strings.Fields(alts), " or "))
	}
	return Explain(err, "%s; see '%s --help'", msg, cmd.CommandPath())
}

// OneLine puts a message that spans lines on one, the lines joined by
// "; " without their indentation.
func OneLine(s string) string {
	var parts []string
	for _, l := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, strings.TrimSuffix(l, ":"))
		}
	}
	return strings.Join(parts, "; ")
}

// TrackRun makes every command of the tree under root set *started when
// its RunE begins, after cobra checked its flags and arguments: an error
// while *started is false is a usage error.
func TrackRun(root *cobra.Command, started *bool) {
	if f := root.RunE; f != nil {
		root.RunE = func(cmd *cobra.Command, args []string) error {
			*started = true
			return f(cmd, args)
		}
	}
	for _, c := range root.Commands() {
		TrackRun(c, started)
	}
}

// Exit statuses. Every error exits with ExitError unless a command
// documents another status in its help and marks the error with WithStatus.
const (
	ExitOK    = 0
	ExitError = 1
	// ExitCorrupt: xchat file get downloaded a file that failed
	// verification (tampered with or truncated): trying again does not
	// help, unlike after other errors.
	ExitCorrupt = 3
)

// Status gives the error it wraps an exit status other than ExitError.
type Status struct {
	Code int
	Err  error
}

func (e *Status) Error() string { return e.Err.Error() }
func (e *Status) Unwrap() error { return e.Err }

// WithStatus marks err to make the command exit with status code.
func WithStatus(code int, err error) error { return &Status{Code: code, Err: err} }

// ExitStatus returns the exit status for the error a command returned:
// ExitOK for nil, the code of the first *Status in its chain, else
// ExitError.
func ExitStatus(err error) int {
	if err == nil {
		return ExitOK
	}
	var s *Status
	if errors.As(err, &s) {
		return s.Code
	}
	return ExitError
}
