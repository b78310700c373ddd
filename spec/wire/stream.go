package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/quic-go/quic-go"
)

// RoundTrip sends req on a new request stream of qc and decodes the
// response into resp (spec/03-framing.md section 3.2). An error response
// is returned as *Error. The stream is abandoned when ctx ends.
func RoundTrip(ctx context.Context, qc *quic.Conn, req Request, resp any) error {
	frame, err := EncodeRequest(req)
	if err != nil {
		return err
	}
	st, err := qc.OpenStreamSync(ctx)
	if err != nil {
		return fmt.Errorf("open stream: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		st.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() {
		st.CancelRead(StreamRequestCancelled)
		st.CancelWrite(StreamRequestCancelled)
	})
	defer stop()
	if _, err := st.Write(frame); err != nil {
		return fmt.Errorf("send request: %w", err)
	}
	if err := st.Close(); err != nil {
		return fmt.Errorf("send request: %w", err)
	}
	payload, err := ReadFrame(st, MaxFrame)
	if errors.Is(err, ErrEndOfStream) {
		return errors.New("the peer closed the request stream without a response")
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("read response: %w", err)
	}
	// Exactly one frame, then FIN.
	var one [1]byte
	if n, err := st.Read(one[:]); n > 0 || !errors.Is(err, io.EOF) {
		st.CancelRead(StreamRequestCancelled)
		if n > 0 {
			return Errorf(CodeMalformed, "more than one frame in a response")
		}
	}
	return DecodeResponse(payload, resp)
}

// ReadRequest reads the one request frame of a request stream and the FIN
// after it, within max bytes and the request deadline (spec/03-framing.md
// section 3.6). A protocol violation is an *Error to answer with; any other
// error means the stream failed and there is no one to answer.
func ReadRequest(st *quic.Stream, max int) ([]byte, error) {
	payload, release, err := readRequest(st, StreamLimits{Max: max})
	if release != nil {
		release()
	}
	return payload, err
}

// StreamLimits bound what reading one request stream may hold.
type StreamLimits struct {
	// Max is the frame length limit (at most MaxFrame).
	Max int
	// Budgets are each charged the frame's announced length after the
	// length is read and before any payload byte is, until the request
	// was answered (for example the connection's, the account's and the
	// server's budgets). While one is spent the stream waits, within its
	// request deadline.
	Budgets []*Budget
}

// readRequest reads a request as ReadRequest does, charging lim.Budgets;
// release, when not nil, gives the budgets back.
func readRequest(st *quic.Stream, lim StreamLimits) (payload []byte, release func(), err error) {
	// The deadline counts from the stream's opening (its acceptance), and
	// bounds the wait for budget as well as the reading.
	deadline := time.Now().Add(RequestDeadline)
	st.SetReadDeadline(deadline)
	length, err := readFrameLength(st, lim.Max)
	if errors.Is(err, ErrEndOfStream) {
		return nil, nil, Errorf(CodeMalformed, "stream ended without a request")
	}
	if err != nil {
		return nil, nil, err
	}
	if len(lim.Budgets) > 0 {
		ctx, cancel := context.WithDeadline(st.Context(), deadline)
		release, err = AcquireAll(ctx, int64(length), lim.Budgets)
		cancel()
		if err != nil {
			return nil, nil, fmt.Errorf("wire: frame memory budget: %w", err)
		}
	}
	payload, err = readPayload(st, length)
	if err != nil {
		return nil, release, err
	}
	var one [1]byte
	if n, err := st.Read(one[:]); n > 0 || !errors.Is(err, io.EOF) {
		if n > 0 {
			return nil, release, Errorf(CodeMalformed, "more than one frame on a request stream")
		}
		return nil, release, err
	}
	return payload, release, nil
}

// WriteResponse writes a response frame and the stream's FIN, or resets the
// stream when the peer does not take it in time.
func WriteResponse(st *quic.Stream, b []byte) {
	st.SetWriteDeadline(time.Now().Add(RequestDeadline))
	if _, err := st.Write(b); err != nil {
		st.CancelWrite(StreamRequestCancelled)
		return
	}
	st.Close()
}

// ServeStream reads one request from st and answers it with handle's
// response frame, or with an error frame for a protocol error. When the
// stream itself fails it is reset and failed is called with the error.
func ServeStream(st *quic.Stream, max int, handle func(payload []byte) []byte, failed func(error)) {
	ServeStreamWithin(st, StreamLimits{Max: max}, handle, failed)
}

// ServeStreamWithin is ServeStream with the frame memory of lim: the
// request's announced length is charged to every budget of lim before its
// payload is read, and given back once the request was handled. A stream
// that waits for budget past its request deadline is reset.
func ServeStreamWithin(st *quic.Stream, lim StreamLimits, handle func(payload []byte) []byte, failed func(error)) {
	payload, release, err := readRequest(st, lim)
	if release == nil {
		release = func() {}
	}
	if err != nil {
		release()
		st.CancelRead(StreamRequestCancelled)
		var pe *Error
		if !errors.As(err, &pe) {
			st.CancelWrite(StreamRequestCancelled)
			if failed != nil {
				failed(err)
			}
			return
		}
		WriteResponse(st, EncodeError(err))
		return
	}
	// The payload's bytes are given back once handled: a peer that is
	// slow to take its response holds none of them.
	resp := handle(payload)
	release()
	WriteResponse(st, resp)
}
