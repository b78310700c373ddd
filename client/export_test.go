package client

// SetHooks sets the test hooks that run after a delivery is read (before it
// is stored) and after it is stored (before it is acknowledged).
func SetHooks(c *Client, afterReceive, afterStore func()) {
	c.afterReceive, c.afterStore = afterReceive, afterStore
}
