// Package conformance will hold the black-box conformance suite that checks
// any homeserver against spec/, section by section (xchat-conformance). It is
// empty until the conformance issue lands.
package conformance
