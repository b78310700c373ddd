package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/xchat-im/xchat/client"
)

func (a *app) deviceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "device",
		Short: "Link and remove devices of this account",
	}
	var wait time.Duration
	link := &cobra.Command{
		Use:   "link [--wait DURATION]",
		Short: "Print a one-time code for 'xchat register --link CODE' on a new device, then wait for it and add it to every group",
		Args:  cobra.MatchAll(noArgs, nonNegative("--wait", &wait)),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			p, c, err := a.connect(ctx)
			if err != nil {
				return err
			}
			defer p.Close()
			defer c.Close()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			code, expires, err := c.CreateLink(cctx)
			cancel()
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s\n", code)
			fmt.Fprintf(cmd.ErrOrStderr(), "xchat: on the new device run: xchat register --link %s --server HOST:PORT (valid until %s)\n",
				code, expires.Local().Format("15:04:05"))
			if wait == 0 {
				return nil
			}
			wctx, cancel := context.WithTimeout(ctx, wait)
			defer cancel()
			linked := false
			err = c.Receive(wctx, client.ReceiveOptions{
				Wait: wait,
				OnLinked: func(dev uint32) {
					fmt.Fprintf(a.stdout, "linked device %d\n", dev)
					linked = true
					cancel()
				},
			})
			if linked {
				return nil
			}
			if err == nil || wctx.Err() != nil {
				return fmt.Errorf("no device used the code within %s; a later 'xchat recv' still completes the link until the code expires", wait)
			}
			return err
		},
	}
	link.Flags().DurationVar(&wait, "wait", 10*time.Minute, "how long to wait for the new device (0: print the code and exit)")
	remove := &cobra.Command{
		Use:   "remove DEVICE",
		Short: "Remove a device of this account from the homeserver and from every group",
		Args:  cobra.MatchAll(cobra.ExactArgs(1), deviceArg(0)),
		RunE: func(cmd *cobra.Command, args []string) error {
			dev, _ := parseDevice(args[0])
			a.target = dev
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return a.withClient(ctx, func(c *client.Client) error { return c.RemoveDevice(ctx, dev) })
		},
	}
	cmd.AddCommand(link, remove)
	return cmd
}
