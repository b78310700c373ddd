package conformance

// limitsTests are the tests of section 15, limits: the limits server-info
// announces.
var limitsTests = []*Test{
	{ID: "15.2/1", Level: MUST, Summary: "server-info announces exactly the fixed limits (keys 1, 2, 3, 4, 6)",
		Cite: "For keys 1, 2, 3, 4 and 6, a v0 server MUST announce exactly the values above.",
		run:  test15_2_1_FixedLimits},
	{ID: "15.2/2", Level: MUST, Summary: "server-info announces the policy limits it applies (keys 5, 7, 8)",
		Cite: "server-info-ok key 4 (section 5.1) MUST announce these values",
		run:  test15_2_2_PolicyLimits},
}

// test15_2_1_FixedLimits checks 15.2/1: server-info announces exactly the fixed limits (keys 1, 2, 3, 4, 6).
func test15_2_1_FixedLimits(t *T) {
	l := t.env.info.Limits
	if l.MaxFrame != 1048576 || l.MaxSealed != 66672 || l.MaxEnvelopesPerSend != 256 || l.MaxIDsPerAck != 1024 || l.MaxKeyPackageLen != 16384 {
		t.Fatalf("limits %+v", l)
	}
}

// test15_2_2_PolicyLimits checks 15.2/2: server-info announces the policy limits it applies (keys 5, 7, 8).
func test15_2_2_PolicyLimits(t *T) {
	l := t.env.info.Limits
	if l.MaxKeyPackages == 0 || l.RetentionSeconds == 0 || l.MailboxMaxEnvelopes == 0 {
		t.Fatalf("limits %+v", l)
	}
}
