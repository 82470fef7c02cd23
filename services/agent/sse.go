package agent

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// maxSSELine bounds one line of an event stream, maxSSEEvent the data of one event.
const (
	maxSSELine  = 1 << 20
	maxSSEEvent = 4 << 20
)

// sseEvent is one dispatched server-sent event.
type sseEvent struct {
	Event string // the event field; "" for the default "message"
	Data  string // data lines joined with "\n"
}

// sseReader parses a text/event-stream incrementally (the WHATWG rules the OpenAI API
// follows): lines end in LF, CRLF or CR; a line starting with ':' is a comment; "field:
// value" drops one space after the colon; data lines accumulate joined by "\n"; a blank
// line dispatches the event unless it has no data. An event still open when the stream ends
// is dispatched too (lenient: some servers omit the last blank line).
type sseReader struct {
	sc    *bufio.Scanner
	event string
	data  bytes.Buffer
	has   bool // a data field was seen since the last dispatch
	done  bool
	big   bool // the event's data grew past maxSSEEvent
}

func newSSEReader(r io.Reader) *sseReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxSSELine)
	sc.Split(scanSSELines)
	return &sseReader{sc: sc}
}

// errSSELineTooLong is returned for a line over maxSSELine bytes, errSSEEventTooLarge for
// an event whose data is over maxSSEEvent bytes.
var (
	errSSELineTooLong   = errors.New("event stream line too long")
	errSSEEventTooLarge = errors.New("event stream event too large")
)

// Next returns the next event, io.EOF after the last one, or the read error.
func (p *sseReader) Next() (sseEvent, error) {
	for !p.done {
		if !p.sc.Scan() {
			p.done = true
			if err := p.sc.Err(); err != nil {
				if errors.Is(err, bufio.ErrTooLong) {
					err = errSSELineTooLong
				}
				return sseEvent{}, fmt.Errorf("read event stream: %w", err)
			}
			break
		}
		ev, ok := p.line(p.sc.Bytes())
		if p.big {
			p.done = true
			return sseEvent{}, fmt.Errorf("read event stream: %w", errSSEEventTooLarge)
		}
		if ok {
			return ev, nil
		}
	}
	if p.has {
		return p.dispatch(), nil
	}
	return sseEvent{}, io.EOF
}

// line processes one line and returns an event when the line dispatches one.
func (p *sseReader) line(l []byte) (sseEvent, bool) {
	if len(l) == 0 {
		if !p.has {
			p.event = ""
			return sseEvent{}, false
		}
		return p.dispatch(), true
	}
	if l[0] == ':' {
		return sseEvent{}, false
	}
	field, value := l, []byte(nil)
	if i := bytes.IndexByte(l, ':'); i >= 0 {
		field, value = l[:i], l[i+1:]
		value = bytes.TrimPrefix(value, []byte(" "))
	}
	switch string(field) {
	case "data":
		if p.data.Len()+len(value) >= maxSSEEvent {
			p.big = true
			return sseEvent{}, false
		}
		if p.has {
			p.data.WriteByte('\n')
		}
		p.data.Write(value)
		p.has = true
	case "event":
		p.event = string(value)
	}
	// id, retry and unknown fields do not matter here.
	return sseEvent{}, false
}

func (p *sseReader) dispatch() sseEvent {
	ev := sseEvent{Event: p.event, Data: p.data.String()}
	p.event, p.has = "", false
	p.data.Reset()
	return ev
}

// scanSSELines is a bufio.SplitFunc for lines ending in LF, CRLF or CR.
func scanSSELines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if atEOF && len(data) == 0 {
		return 0, nil, nil
	}
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		if data[i] == '\n' {
			return i + 1, data[:i], nil
		}
		// CR: a following LF belongs to the same line ending.
		if i+1 < len(data) {
			if data[i+1] == '\n' {
				return i + 2, data[:i], nil
			}
			return i + 1, data[:i], nil
		}
		if atEOF {
			return i + 1, data[:i], nil
		}
		return 0, nil, nil // need one more byte to tell CR from CRLF
	}
	if atEOF {
		return len(data), data, nil
	}
	return 0, nil, nil
}
