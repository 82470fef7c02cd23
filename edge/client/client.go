// Package client is the Go client of the gateway's WebSocket protocol (SPEC §5): it dials,
// completes the hello handshake, correlates requests with their responses (including the
// two-stage agent method), delivers events in order with seq-gap detection, watches the
// gateway's ticks, and optionally reconnects with backoff. The CLI, the WebChat relay, apps
// and the tests all talk to the gateway through it.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clawdis/clawdis/schemas"
)

// Defaults of Options.
const (
	DefaultURL         = "ws://127.0.0.1:18789"
	DefaultName        = "clawdis-go"
	DefaultMode        = "cli"
	DefaultDialTimeout = 10 * time.Second
)

// writeTimeout bounds one frame write; a write that takes longer means the connection is
// broken, and the library then closes it.
const writeTimeout = 10 * time.Second

// Options configures a Client. The zero value connects to the local gateway as a CLI client.
//
// OnEvent, OnGap, OnConnect and OnDisconnect all run on one callback goroutine owned by the
// client, in the order things happened; they may call Request and Close. The queue in front
// of them is unbounded, so a slow callback delays later callbacks but never the connection.
type Options struct {
	// URL of the gateway. Default "ws://127.0.0.1:18789".
	URL string
	// Token is sent as hello.auth.token when non-empty. It is never logged.
	Token string
	// Client identifies this client in the hello; each empty field gets its default:
	// Name "clawdis-go", Version the module version from the build info (else "dev"),
	// Platform runtime.GOOS, Mode "cli". InstanceID is sent only when set.
	Client schemas.ClientInfo
	// Caps are sent as hello.caps when non-empty.
	Caps []string
	// DialTimeout bounds the connection plus the handshake of every (re)connect.
	// Default 10s.
	DialTimeout time.Duration
	// Reconnect keeps reconnecting after a drop until Close. Default false: the client is
	// finally closed by the first drop (the CLI's behaviour).
	Reconnect bool
	// Backoff is the reconnect policy; see Backoff for its defaults.
	Backoff Backoff
	// OnEvent receives every event frame (tick and shutdown included), in order.
	OnEvent func(schemas.Event)
	// OnGap is called before OnEvent when an event's seq skips numbers: expected is
	// last seq + 1, got the event's seq. Seq tracking restarts with each connection.
	OnGap func(expected, got int64)
	// OnConnect is called after each successful handshake, before that connection's events.
	OnConnect func(schemas.HelloOK)
	// OnDisconnect is called once for each connection that ended, with the cause
	// (ErrClosed after Close, ErrTickTimeout, a *CloseError, or a read error).
	OnDisconnect func(err error)
	// FrameHook sees every raw frame received, handshake frames included. It runs on the
	// connection's reader goroutine: it must be fast and must not call Close.
	FrameHook func(raw []byte)
	// Logger receives lifecycle logs; default discards them.
	Logger *slog.Logger
	// HTTPHeader adds headers to the WebSocket upgrade request (e.g. Origin).
	HTTPHeader http.Header
}

func (o Options) withDefaults() Options {
	if o.URL == "" {
		o.URL = DefaultURL
	}
	if o.Client.Name == "" {
		o.Client.Name = DefaultName
	}
	if o.Client.Version == "" {
		o.Client.Version = moduleVersion()
	}
	if o.Client.Platform == "" {
		o.Client.Platform = runtime.GOOS
	}
	if o.Client.Mode == "" {
		o.Client.Mode = DefaultMode
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	o.Backoff = o.Backoff.withDefaults()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// moduleVersion is read from the build info once: parsing it is most of a Dial's
// allocations otherwise.
var moduleVersion = sync.OnceValue(func() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
})

// Client is a connection to the gateway. All methods are safe for concurrent use.
type Client struct {
	opts Options
	log  *slog.Logger

	ctx    context.Context // lifetime; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the supervisor goroutine
	disp   *dispatcher
	nextID atomic.Uint64

	mu        sync.Mutex
	cur       *session        // nil while disconnected
	hello     schemas.HelloOK // the latest, its snapshot decoded once helloFull
	helloRaw  []byte
	helloFull bool
	finished  bool
	finalErr  error
}

// Dial connects to the gateway and completes the hello handshake (protocol 1..1). ctx
// bounds only this first connection (together with DialTimeout); reconnects are bounded by
// DialTimeout alone. Errors: a *HelloError when the gateway refuses the hello, a
// *CloseError when it closes the connection during the handshake, an error wrapping
// ErrUnreachable when no connection could be opened.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	opts = opts.withDefaults()
	life, cancel := context.WithCancel(context.Background())
	c := &Client{
		opts:   opts,
		log:    opts.Logger.With("component", "gateway_client"),
		ctx:    life,
		cancel: cancel,
		disp:   newDispatcher(),
	}
	s, err := c.connect(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	c.install(s)
	c.wg.Add(1)
	go c.supervise(s)
	go c.disp.run()
	return c, nil
}

// Hello returns the latest hello-ok (of the current or the last connection).
func (c *Client) Hello() schemas.HelloOK {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.helloFull {
		c.hello, c.helloFull = fullHello(c.hello, c.helloRaw), true
	}
	return c.hello
}

// Done is closed when the client is finally closed: after Close, or after a drop when
// Reconnect is off, once every callback has run. It is not closed by a drop that will be
// followed by a reconnect.
func (c *Client) Done() <-chan struct{} { return c.disp.done }

// Err returns why the client finally closed (ErrClosed after Close, else the cause of the
// last drop), or nil while it is still open.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.finalErr
}

// Close closes the connection with 1000, stops reconnecting, fails pending requests and
// waits for the client's goroutines; callbacks already queued still run first. When a
// callback is running at that moment (as when Close is called from one), Close does not
// wait for the callback goroutine; Done reports when it has finished. It is safe to call
// more than once.
func (c *Client) Close() error {
	c.cancel()
	c.wg.Wait()
	if !c.disp.inCallback.Load() {
		<-c.disp.done
	}
	return nil
}

// Request sends a req frame and waits for its res. params may be nil (omitted), a
// json.RawMessage (sent as is) or any value (marshalled). It returns the payload, a
// *ResponseError for ok:false, an error wrapping ErrDisconnected when the connection
// drops (or is down), ErrClosed after Close, or ctx's error when ctx ends first; a
// timed-out request does not affect the connection or other requests.
func (c *Client) Request(ctx context.Context, method string, params any) (json.RawMessage, error) {
	return c.do(ctx, method, params, false, nil)
}

// RequestFinal runs a two-stage method (agent): the first res is the acknowledgement
// (onAck, when non-nil, gets its payload when it is ok; an error res ends the call), the
// second res with the same id is the final result. A first res that is not an
// acknowledgement ({status:"accepted"}) is the final of a finished run, and the only res. It returns the final payload, or a
// *ResponseError whose Payload holds e.g. {runId, status:"timeout"}. ctx bounds both stages.
func (c *Client) RequestFinal(ctx context.Context, method string, params any, onAck func(json.RawMessage)) (json.RawMessage, error) {
	return c.do(ctx, method, params, true, onAck)
}

// call is one pending request. The reader hands it at most two responses (ack and final)
// and the drop at most one error, each followed by a signal on wake. Calls are reused:
// once forgotten nobody hands a call anything, but a signal sent just before may still
// arrive during its next use, so a signal only means "look again" (next).
type call struct {
	twoStage bool
	wake     chan struct{} // capacity 3; sends never block (wakeCall); never written after New
	// Guarded by Client.mu:
	acked bool                // the reader saw the ok ack
	res   [2]schemas.Response // received, not yet taken
	head  int                 // res[head:n] wait to be taken
	n     int
	err   error // set when the connection dropped
}

var callPool = sync.Pool{New: func() any { return &call{wake: make(chan struct{}, 3)} }}

// wakeCall signals cl without blocking: a full channel already holds signals that make
// the waiter look again.
func wakeCall(cl *call) {
	select {
	case cl.wake <- struct{}{}:
	default:
	}
}

// next takes the call's next response, or its error once the connection dropped; ok is
// false when neither is there yet.
func (c *Client) next(cl *call) (res schemas.Response, err error, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl.head < cl.n {
		res = cl.res[cl.head]
		cl.res[cl.head] = schemas.Response{}
		cl.head++
		return res, nil, true // answered before a drop: the answer wins
	}
	if cl.err != nil {
		return res, cl.err, true
	}
	return res, nil, false
}

// framePool holds the buffers req frames are built in; a frame is written before its
// buffer goes back.
var framePool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// appendRequest builds a req frame in b, as json.Marshal of schemas.Request would (params
// compacted and checked to be JSON).
func appendRequest(b *bytes.Buffer, id uint64, method string, params json.RawMessage) error {
	b.WriteString(`{"type":"req","id":"`)
	b.Write(strconv.AppendUint(b.AvailableBuffer(), id, 10))
	b.WriteString(`","method":`)
	b.Write(schemas.AppendString(b.AvailableBuffer(), method))
	if len(params) > 0 {
		b.WriteString(`,"params":`)
		if err := json.Compact(b, params); err != nil {
			return err
		}
	}
	b.WriteByte('}')
	return nil
}

func (c *Client) do(ctx context.Context, method string, params any, twoStage bool, onAck func(json.RawMessage)) (json.RawMessage, error) {
	raw, err := encodeParams(params)
	if err != nil {
		return nil, fmt.Errorf("%s: encode params: %w", method, err)
	}
	id := c.nextID.Add(1)
	frame := framePool.Get().(*bytes.Buffer)
	defer putFrame(frame)
	if err := appendRequest(frame, id, method, raw); err != nil {
		return nil, fmt.Errorf("%s: encode request: %w", method, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	cl := callPool.Get().(*call)
	cl.twoStage = twoStage

	c.mu.Lock()
	s := c.cur
	if s == nil {
		err := c.downErr()
		c.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	s.pending[id] = cl
	c.mu.Unlock()
	defer c.forget(s, id, cl)

	if err := s.write(frame.Bytes()); err != nil {
		return nil, fmt.Errorf("%s: %w: send: %w", method, ErrDisconnected, err)
	}
	if c.log.Enabled(ctx, slog.LevelDebug) {
		c.log.Debug("request sent", "method", method, "id", id, "bytes", frame.Len())
	}

	acked := false
	for {
		res, err, ok := c.next(cl)
		if !ok {
			select {
			case <-cl.wake:
			case <-ctx.Done():
				return nil, fmt.Errorf("%s: %w", method, ctx.Err())
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", method, err)
		}
		if !res.OK {
			return nil, responseError(res)
		}
		if twoStage && !acked && isAck(res.Payload) {
			acked = true
			if onAck != nil {
				onAck(res.Payload)
			}
			continue
		}
		return res.Payload, nil
	}
}

// downErr is the error of a request made while no connection is up; c.mu is held.
func (c *Client) downErr() error {
	if c.ctx.Err() != nil {
		return ErrClosed
	}
	if c.finished {
		return fmt.Errorf("%w: %w", ErrDisconnected, c.finalErr)
	}
	return fmt.Errorf("%w: reconnecting", ErrDisconnected)
}

func putFrame(b *bytes.Buffer) {
	if b.Cap() <= 64<<10 {
		b.Reset()
		framePool.Put(b)
	}
}

// forget removes a finished call from its session's pending table and puts it back for
// reuse: nothing finds it any more.
func (c *Client) forget(s *session, id uint64, cl *call) {
	c.mu.Lock()
	if s.pending[id] == cl {
		delete(s.pending, id)
	}
	// Every field but wake, which the reader may still be signalling on after it let go
	// of c.mu (wake is never written after the call is made).
	cl.twoStage, cl.acked, cl.res, cl.head, cl.n, cl.err = false, false, [2]schemas.Response{}, 0, 0, nil
	c.mu.Unlock()
	callPool.Put(cl)
}

func encodeParams(params any) (json.RawMessage, error) {
	switch p := params.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		if len(p) == 0 {
			return nil, nil
		}
		return p, nil
	default:
		return json.Marshal(params)
	}
}

func responseError(res schemas.Response) *ResponseError {
	e := &ResponseError{Payload: res.Payload}
	if res.Error != nil {
		e.Shape = *res.Error
	} else {
		e.Shape = schemas.ErrorShape{Code: "UNKNOWN", Message: "request failed without an error"}
	}
	return e
}
