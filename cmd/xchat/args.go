package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xchat-im/xchat/client"
	"github.com/xchat-im/xchat/spec/wire"
)

// Argument validators: cobra runs them before a command starts, so that a
// mistyped argument is a usage error and nothing is sent.

// addressArgs checks that the arguments at these positions, where
// present, are xchat addresses (USER@DOMAIN).
func addressArgs(positions ...int) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		for _, i := range positions {
			if i < len(args) {
				if err := checkAddress(args[i]); err != nil {
					return err
				}
			}
		}
		return nil
	}
}

// addressesFrom checks that the arguments from position from on are xchat
// addresses.
func addressesFrom(from int) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		for i := from; i < len(args); i++ {
			if err := checkAddress(args[i]); err != nil {
				return err
			}
		}
		return nil
	}
}

// checkAddress explains why s is not an address, in the words of the
// address rules (spec/04-addressing.md).
func checkAddress(s string) error {
	_, err := wire.NormalizeAddress(s)
	if err == nil {
		return nil
	}
	var we *wire.Error
	if !errors.As(err, &we) {
		return err
	}
	why := strings.TrimPrefix(we.Message, strconv.Quote(s)+": ")
	if why == "no @" {
		return fmt.Errorf("%q is not an address: want USER@DOMAIN", s)
	}
	return fmt.Errorf("%q is not an address: %s", s, why)
}

// noArgs refuses arguments to a command that takes none.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("'%s' takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}

// nonNegative checks the duration flag name, parsed into d, before the
// command runs.
func nonNegative(name string, d *time.Duration) cobra.PositionalArgs {
	return func(*cobra.Command, []string) error {
		if *d < 0 {
			return fmt.Errorf("%s %s: want a duration of 0 or more", name, *d)
		}
		return nil
	}
}

// groupArg checks that the argument at position i is a group identifier.
func groupArg(i int) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if i < len(args) {
			if _, err := client.ParseGroupID(args[i]); err != nil {
				return err
			}
		}
		return nil
	}
}

// deviceArg checks that the argument at position i is a device number.
func deviceArg(i int) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if i < len(args) {
			if _, err := parseDevice(args[i]); err != nil {
				return err
			}
		}
		return nil
	}
}

// parseDevice parses a device number: 1 to 2^32-1.
func parseDevice(s string) (uint32, error) {
	dev, err := strconv.ParseUint(s, 10, 32)
	if err != nil || dev == 0 {
		return 0, fmt.Errorf("%q is not a device number (1, 2, ...; 'xchat whoami' shows this device's)", s)
	}
	return uint32(dev), nil
}
