package profile

import "database/sql"

// TrustOwnDevice records a device of the profile's own account as trusted,
// with its signature key (spec/09-mls.md section 9.5).
func (t *Tx) TrustOwnDevice(device uint32, sigKey []byte) error {
	_, err := t.exec("trust own device", `INSERT INTO own_devices (device, sig_key) VALUES (?, ?)
		ON CONFLICT (device) DO UPDATE SET sig_key = excluded.sig_key`, device, sigKey)
	return err
}

// UntrustOwnDevice forgets a trusted own device.
func (t *Tx) UntrustOwnDevice(device uint32) error {
	_, err := t.exec("untrust own device", `DELETE FROM own_devices WHERE device = ?`, device)
	return err
}

// OwnDeviceKey returns the signature key of a trusted own device.
func (t *Tx) OwnDeviceKey(device uint32) ([]byte, error) {
	var k []byte
	if err := t.get("own device", `SELECT sig_key FROM own_devices WHERE device = ?`, []any{device}, &k); err != nil {
		return nil, err
	}
	return k, nil
}

// OwnDevices returns the trusted own devices with their signature keys.
func (t *Tx) OwnDevices() (map[uint32][]byte, error) {
	out := map[uint32][]byte{}
	err := t.list("own devices", `SELECT device, sig_key FROM own_devices`, nil, func(rows *sql.Rows) error {
		var d uint32
		var k []byte
		if err := rows.Scan(&d, &k); err != nil {
			return err
		}
		out[d] = k
		return nil
	})
	return out, err
}
