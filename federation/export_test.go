package federation

import "github.com/quic-go/quic-go"

// OutboundStats returns the QUIC statistics of f's open outbound
// connection to domain, for the probes of the call tests.
func OutboundStats(f *Federation, domain string) (quic.ConnectionStats, bool) {
	qc := f.liveConn(domain)
	if qc == nil {
		return quic.ConnectionStats{}, false
	}
	return qc.ConnectionStats(), true
}
