package mls

import "errors"

// MarshalState encodes the whole group state (current and retained
// epochs, private keys, pending proposals) so that a client can store it
// and continue with UnmarshalGroup. The encoding holds secrets.
func (g *Group) MarshalState() ([]byte, error) {
	return nil, errors.New("mls: MarshalState not implemented yet")
}

// UnmarshalGroup restores a group encoded by MarshalState, with the
// policy cfg.
func UnmarshalGroup(data []byte, cfg Config) (*Group, error) {
	return nil, errors.New("mls: UnmarshalGroup not implemented yet")
}
