package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/xchat-im/xchat/client"
)

func (a *app) groupCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "Create and manage group chats",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "create NAME MEMBER...",
		Short: "Create a group with these users (and your other devices); prints its ID",
		Args:  cobra.MatchAll(cobra.MinimumNArgs(2), addressesFrom(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.peers = args[1:]
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return a.withClient(ctx, func(c *client.Client) error {
				id, err := c.CreateGroup(ctx, args[0], args[1:])
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "%x\n", id)
				return nil
			})
		},
	}, &cobra.Command{
		Use:   "add ID MEMBER...",
		Short: "Add users (all their devices) to a group",
		Args:  cobra.MatchAll(cobra.MinimumNArgs(2), groupArg(0), addressesFrom(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.peers = args[1:]
			return a.onGroup(cmd, args[0], func(ctx context.Context, c *client.Client, id []byte) error {
				return c.AddMembers(ctx, id, args[1:])
			})
		},
	}, &cobra.Command{
		Use:   "remove ID MEMBER",
		Short: "Remove a user (all their devices) from a group",
		Args:  cobra.MatchAll(cobra.ExactArgs(2), groupArg(0), addressArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.peers = args[1:]
			return a.onGroup(cmd, args[0], func(ctx context.Context, c *client.Client, id []byte) error {
				return c.RemoveMember(ctx, id, args[1])
			})
		},
	}, &cobra.Command{
		Use:   "list",
		Short: "List the groups and one-to-one chats of this profile",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer p.Close()
			groups, err := client.ProfileGroups(cmd.Context(), p)
			if err != nil {
				return err
			}
			for _, g := range groups {
				name := fmt.Sprintf("%q", g.Name)
				if g.Direct {
					name = "direct with " + g.Peer
				}
				state := ""
				if !g.Active {
					state = " (left)"
				}
				fmt.Fprintf(a.stdout, "%x %s epoch %d, %d devices: %s%s\n", g.ID, name, g.Epoch, g.Devices, strings.Join(g.Members, ", "), state)
			}
			return nil
		},
	})
	return cmd
}

// onGroup runs f on a connected client for the group named by arg.
func (a *app) onGroup(cmd *cobra.Command, arg string, f func(ctx context.Context, c *client.Client, id []byte) error) error {
	id, err := client.ParseGroupID(arg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	defer cancel()
	return a.withClient(ctx, func(c *client.Client) error { return f(ctx, c, id) })
}
