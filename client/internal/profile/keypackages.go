package profile

import "time"

// AddKeyPackage stores the private keys of a key package (an encoded
// bundle) under its reference.
func (t *Tx) AddKeyPackage(ref, bundle []byte, lastResort bool) error {
	_, err := t.exec("save key package", `INSERT INTO key_packages (ref, bundle, last_resort, created_at_ms) VALUES (?, ?, ?, ?)`,
		ref, bundle, boolInt(lastResort), time.Now().UnixMilli())
	return err
}

// KeyPackage returns the encoded bundle of a key package.
func (t *Tx) KeyPackage(ref []byte) ([]byte, error) {
	var b []byte
	if err := t.get("key package", `SELECT bundle FROM key_packages WHERE ref = ?`, []any{ref}, &b); err != nil {
		return nil, err
	}
	return b, nil
}

// HasLastResort reports whether an unused last-resort key package is
// stored.
func (t *Tx) HasLastResort() (bool, error) {
	var n int
	err := t.get("key packages", `SELECT count(*) FROM key_packages WHERE last_resort = 1 AND used_at_ms IS NULL`, nil, &n)
	return n > 0, err
}

// RetireLastResort marks the unused last-resort key packages used now (a
// replaced one stays usable until DeleteKeyPackagesUsedBefore drops it).
func (t *Tx) RetireLastResort() error {
	_, err := t.exec("save key packages", `UPDATE key_packages SET used_at_ms = ? WHERE last_resort = 1 AND used_at_ms IS NULL`,
		time.Now().UnixMilli())
	return err
}

// MarkKeyPackageUsed records that a Welcome used a key package, unless it
// was used before.
func (t *Tx) MarkKeyPackageUsed(ref []byte) error {
	_, err := t.exec("save key package", `UPDATE key_packages SET used_at_ms = ? WHERE ref = ? AND used_at_ms IS NULL`,
		time.Now().UnixMilli(), ref)
	return err
}

// DeleteKeyPackagesUsedBefore deletes the key packages used before a
// time.
func (t *Tx) DeleteKeyPackagesUsedBefore(before time.Time) error {
	_, err := t.exec("delete key packages", `DELETE FROM key_packages WHERE used_at_ms < ?`, before.UnixMilli())
	return err
}
