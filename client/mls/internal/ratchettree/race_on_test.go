//go:build race

package ratchettree

// raceEnabled reports a -race build, in which the slowest vector tests
// check a sample of their cases' receivers.
const raceEnabled = true
