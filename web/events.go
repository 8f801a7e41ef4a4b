package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"fieldkit/internal/auth"
	"fieldkit/internal/bus"
	"fieldkit/internal/clock"
	"fieldkit/internal/httpapi"
)

// Source is one section of the page: a GET endpoint of the agent's own
// API, read in-process and pushed to the page when its answer changes.
// A source that answers 404 is a part this agent does not have; the page
// hides its section.
type Source struct {
	Name string
	Path string
	// Every is the least time between two reads (0: as often as
	// something happens), for endpoints that cost a database query.
	Every time.Duration
}

// DefaultSources are the sections of the crew page.
var DefaultSources = []Source{
	{Name: "status", Path: "/api/status"},
	{Name: "preflight", Path: "/api/preflight/state"},
	{Name: "scenes", Path: "/api/scenes"},
	{Name: "batteries", Path: "/api/batteries"},
	{Name: "printers", Path: "/api/printers"},
	{Name: "receipts", Path: "/api/receipts/report?since=24h", Every: 10 * time.Second},
	{Name: "uplink", Path: "/api/receipts/uplink", Every: 2 * time.Second},
	{Name: "rehearsal", Path: "/api/rehearsal"},
	{Name: "pickup", Path: "/api/pickup?limit=50", Every: time.Second},
}

// message is one server-sent event.
type message struct {
	name string
	data []byte
}

// hub reads the sources while at least one page is connected and fans
// changes out to the pages. One reader serves every page, so ten phones
// cost the box what one does.
type hub struct {
	sources []Source
	handler func() http.Handler
	bus     *bus.Bus
	clock   clock.Clock
	tick    time.Duration
	beat    time.Duration

	readMu  sync.Mutex // one reader at a time keeps broadcasts in order
	mu      sync.Mutex
	clients map[chan message]struct{}
	last    map[string][]byte // nil data: absent
	readAt  map[string]time.Time
	kick    chan struct{}
}

func newHub(sources []Source, handler func() http.Handler, b *bus.Bus, c clock.Clock, tick, beat time.Duration) *hub {
	return &hub{sources: sources, handler: handler, bus: b, clock: c, tick: tick, beat: beat,
		clients: map[chan message]struct{}{}, last: map[string][]byte{}, readAt: map[string]time.Time{},
		kick: make(chan struct{}, 1)}
}

// Kick asks for a read of every source soon.
func (h *hub) Kick() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// run reads on every bus event (debounced), on Kick and on each tick,
// while pages are connected; it ends with ctx and closes every page's
// stream.
func (h *hub) run(ctx context.Context) error {
	var events <-chan bus.Event
	if h.bus != nil {
		sub := h.bus.Subscribe("#", 64)
		defer sub.Close()
		events = sub.C()
	}
	defer h.closeAll()
	const settle = 100 * time.Millisecond
	for {
		t := h.clock.NewTimer(h.tick)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-events:
			// Let a burst of events (a scene's steps) settle first.
			t.Stop()
			s := h.clock.NewTimer(settle)
			select {
			case <-ctx.Done():
				s.Stop()
				return nil
			case <-s.C():
			}
			drain(events)
		case <-h.kick:
			t.Stop()
		case <-t.C():
		}
		if h.connected() > 0 {
			h.readAll(ctx, false)
		}
	}
}

func drain(c <-chan bus.Event) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

func (h *hub) connected() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// readAll reads the sources due (all of them when force) and broadcasts
// those whose answer changed.
func (h *hub) readAll(ctx context.Context, force bool) {
	h.readMu.Lock()
	defer h.readMu.Unlock()
	now := h.clock.Now()
	for _, s := range h.sources {
		h.mu.Lock()
		due := force || s.Every == 0 || now.Sub(h.readAt[s.Name]) >= s.Every
		h.mu.Unlock()
		if !due {
			continue
		}
		data := h.read(ctx, s.Path)
		h.mu.Lock()
		h.readAt[s.Name] = now
		old, seen := h.last[s.Name]
		if seen && bytes.Equal(old, data) {
			h.mu.Unlock()
			continue
		}
		h.last[s.Name] = data
		h.broadcastLocked(message{s.Name, data})
		h.mu.Unlock()
	}
}

// read GETs path through the agent's own router as the crew role; any
// answer but 200 means the section is absent.
func (h *hub) read(ctx context.Context, path string) []byte {
	req, err := http.NewRequestWithContext(auth.WithRole(ctx, httpapi.Crew), http.MethodGet, path, nil)
	if err != nil {
		return nil
	}
	req.RemoteAddr = "127.0.0.1:0"
	req.Host = "localhost"
	rec := &recorder{hdr: http.Header{}, code: http.StatusOK}
	h.handler().ServeHTTP(rec, req)
	if rec.code != http.StatusOK {
		return nil
	}
	// One line per event: SSE data may not hold bare newlines.
	return compact(rec.body.Bytes())
}

func (h *hub) broadcastLocked(m message) {
	for c := range h.clients {
		select {
		case c <- m:
		default:
			// A page that cannot keep up is dropped; its browser
			// reconnects and gets a fresh snapshot.
			delete(h.clients, c)
			close(c)
		}
	}
}

// subscribe returns a stream that starts with the current state of every
// source.
func (h *hub) subscribe(ctx context.Context) chan message {
	h.mu.Lock()
	first := len(h.clients) == 0 && len(h.last) == 0
	h.mu.Unlock()
	if first {
		h.readAll(ctx, true)
	}
	c := make(chan message, 4*len(h.sources)+8)
	h.mu.Lock()
	for _, s := range h.sources {
		if data, ok := h.last[s.Name]; ok {
			c <- message{s.Name, data}
		}
	}
	h.clients[c] = struct{}{}
	h.mu.Unlock()
	h.Kick()
	return c
}

func (h *hub) unsubscribe(c chan message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; ok {
		delete(h.clients, c)
		close(c)
	}
}

func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		delete(h.clients, c)
		close(c)
	}
}

// serve is GET /api/events: a text/event-stream of "event: <source>" with
// the source's JSON (or null when absent) as data, and "event: alive"
// with the server's time (Unix ms) every beat.
func (h *hub) serve(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		httpapi.Error(w, http.StatusInternalServerError, "streaming not supported")
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	c := h.subscribe(r.Context())
	defer h.unsubscribe(c)
	fmt.Fprint(w, "retry: 2000\n\n")
	fl.Flush()
	// "alive" every beat tells the page the box still answers: its
	// silence (a cut network, a hung agent) greys the page out even when
	// no connection error reaches the browser.
	alive := time.NewTicker(h.beat)
	defer alive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case t := <-alive.C:
			fmt.Fprintf(w, "event: alive\ndata: %d\n\n", t.UnixMilli())
		case m, ok := <-c:
			if !ok {
				return
			}
			data := m.data
			if data == nil {
				data = []byte("null")
			}
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", m.name, data)
		}
		fl.Flush()
	}
}

func compact(b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r"), nil), []byte("\n"), []byte(" "))
	}
	return buf.Bytes()
}

// recorder is the minimal ResponseWriter the hub reads its own API with.
type recorder struct {
	hdr  http.Header
	code int
	body bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.hdr }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(code int)        { r.code = code }
