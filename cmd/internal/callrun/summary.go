package callrun

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Summary is what a call did, as 'xchat call' prints it: the last line
// of its --json output is this object.
type Summary struct {
	CallID              string `json:"call_id"`
	DurationMS          int64  `json:"duration_ms"`
	AudioFramesSent     uint64 `json:"audio_frames_sent"`
	AudioFramesReceived uint64 `json:"audio_frames_received"`
	VideoFramesSent     uint64 `json:"video_frames_sent"`
	VideoFramesReceived uint64 `json:"video_frames_received"`
	// Lost counts the frames of other participants that did not arrive
	// (gaps in their sequence numbers), did not decrypt, or did not decode
	// (audio) or match the test pattern (video).
	Lost uint64 `json:"lost"`
	// Participants is the number of devices that took part, this one
	// included; Peers are the other participants' addresses.
	Participants int      `json:"participants"`
	Peers        []string `json:"peers"`
	// RTTp50 is the median round-trip time in milliseconds, null without
	// a sample.
	RTTp50     *float64 `json:"rtt_ms_p50"`
	SendErrors uint64   `json:"send_errors,omitempty"` // frames the call refused to send
	Recording  string   `json:"recording,omitempty"`   // the WAV file written
	// RecordedMS is the length of the recording.
	RecordedMS int64 `json:"recorded_ms,omitempty"`
}

// WriteText writes the summary for a person: a few lines.
func (s *Summary) WriteText(w io.Writer) error {
	peers := "nobody"
	if len(s.Peers) > 0 {
		peers = strings.Join(s.Peers, ", ")
	}
	rtt := "no round-trip sample"
	if s.RTTp50 != nil {
		rtt = fmt.Sprintf("round trip %.1f ms (median)", *s.RTTp50)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "call %s: %s with %s (%d participants)\n", s.CallID, ms(s.DurationMS), peers, s.Participants)
	fmt.Fprintf(&b, "audio: %d frames sent, %d received; video: %d frames sent, %d received; %d lost; %s\n",
		s.AudioFramesSent, s.AudioFramesReceived, s.VideoFramesSent, s.VideoFramesReceived, s.Lost, rtt)
	if s.SendErrors > 0 {
		fmt.Fprintf(&b, "%d frames could not be sent\n", s.SendErrors)
	}
	if s.Recording != "" {
		fmt.Fprintf(&b, "recorded %s of the others' audio to %s\n", ms(s.RecordedMS), s.Recording)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ms shows milliseconds as seconds: "10.0 s".
func ms(n int64) string {
	return fmt.Sprintf("%.1f s", (time.Duration(n) * time.Millisecond).Seconds())
}
