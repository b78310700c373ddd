package profile

import (
	"fmt"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// SaveDeviceList records the device list a contact's homeserver gave.
func (t *Tx) SaveDeviceList(address string, devs []wire.DeviceInfo) error {
	b, err := wire.Marshal(devs)
	if err != nil {
		return fmt.Errorf("profile: device list: %w", err)
	}
	_, err = t.exec("save device list", `INSERT INTO device_lists (address, devices, fetched_at_ms) VALUES (?, ?, ?)
		ON CONFLICT (address) DO UPDATE SET devices = excluded.devices, fetched_at_ms = excluded.fetched_at_ms`,
		address, b, time.Now().UnixMilli())
	return err
}

// DeviceList returns the device list last recorded for a contact.
func (t *Tx) DeviceList(address string) ([]wire.DeviceInfo, error) {
	var b []byte
	if err := t.get("device list", `SELECT devices FROM device_lists WHERE address = ?`, []any{address}, &b); err != nil {
		return nil, err
	}
	var devs []wire.DeviceInfo
	if err := wire.Unmarshal(b, &devs); err != nil {
		return nil, fmt.Errorf("profile: device list: %w", err)
	}
	return devs, nil
}
