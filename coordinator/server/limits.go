package server

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Limits bound what a client can make the server hold. The zero value of any field takes
// its default; the defaults let a dashboard and a few scripts work freely while a client
// with no token, or one that misbehaves, cannot hold connections open, fill the memory or
// starve a lead's requests.
type Limits struct {
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout are the http.Server's: a
	// client that sends its request slowly, reads its answer slowly or keeps an idle
	// connection open is cut off after them. Defaults 5 s, 20 s, 60 s, 30 s.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// ConnsPerClient is how many connections one address may hold at once (default 32);
	// Conns, all clients together (default 512). A connection over either is answered 503
	// at once and closed, never left waiting.
	ConnsPerClient, Conns int
	// MaxQueryBytes bounds a request's query string (default 4 KiB: every question the API
	// takes fits in a few hundred bytes), MaxBodyBytes its body (default 64 KiB: only token
	// requests have one) and MaxRows the rows one answer may hold (default 20,000, some
	// 12 MB of JSON); a request over any is refused with a 4xx saying how to narrow it.
	MaxQueryBytes, MaxBodyBytes, MaxRows int
}

func (l Limits) withDefaults() Limits {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.ReadHeaderTimeout, 5*time.Second)
	def(&l.ReadTimeout, 20*time.Second)
	def(&l.WriteTimeout, 60*time.Second)
	def(&l.IdleTimeout, 30*time.Second)
	defInt(&l.ConnsPerClient, 32)
	defInt(&l.Conns, 512)
	defInt(&l.MaxQueryBytes, 4<<10)
	defInt(&l.MaxBodyBytes, 64<<10)
	defInt(&l.MaxRows, 20_000)
	return l
}

// HTTPServer returns the http.Server to serve s with: its handler behind the request
// limits, and the timeouts of s's Limits. Serve it on Listen's listener.
func (s *Server) HTTPServer(logger *slog.Logger) *http.Server {
	l := s.limits
	return &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// Listen wraps ln so that no client holds more than Limits.ConnsPerClient connections and
// all together no more than Limits.Conns: a connection over either gets a 503 and is closed
// at once, so a flood of idle connections can never use up the server's file descriptors
// while a lead waits.
func (s *Server) Listen(ln net.Listener) net.Listener {
	return &limitListener{Listener: ln, perClient: s.limits.ConnsPerClient, total: s.limits.Conns, by: map[string]int{}, log: s.opts.Logger}
}

type limitListener struct {
	net.Listener
	perClient, total int
	log              *slog.Logger

	mu  sync.Mutex
	n   int
	by  map[string]int
	led time.Time // when a refusal was last logged
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host := clientOf(c.RemoteAddr())
		l.mu.Lock()
		over := l.n >= l.total || l.by[host] >= l.perClient
		if !over {
			l.n++
			l.by[host]++
		}
		logIt := over && time.Since(l.led) > 10*time.Second
		if logIt {
			l.led = time.Now()
		}
		l.mu.Unlock()
		if over {
			if logIt {
				l.log.Warn("refusing connections over the limit", "client", host, "per_client", l.perClient, "total", l.total)
			}
			go refuse(c)
			continue
		}
		return &limitConn{Conn: c, release: func() { l.release(host) }}, nil
	}
}

func (l *limitListener) release(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n--
	if l.by[host]--; l.by[host] <= 0 {
		delete(l.by, host)
	}
}

// refuse answers a connection over the limit with a 503 and closes it; it never waits long
// on a client that does not read.
func refuse(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	const body = `{"error":"too many connections from this client; close idle connections and try again"}` + "\n"
	fmt.Fprintf(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: %d\r\nRetry-After: 5\r\nConnection: close\r\n\r\n%s", len(body), body)
}

func clientOf(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// guard refuses, before any work, requests whose query string or body is larger than the
// limits allow, and query strings the standard parser would silently cut short (a ';' is
// not a separator to Go, and a parameter after one would be dropped: to=2023-01; must not
// quietly answer for every month).
func (s *Server) guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case len(r.URL.RawQuery) > s.limits.MaxQueryBytes:
			writeError(w, http.StatusRequestURITooLong, fmt.Sprintf("the query string is %d bytes; at most %d are taken: ask for fewer measures or practices at once", len(r.URL.RawQuery), s.limits.MaxQueryBytes))
			return
		case strings.Contains(r.URL.RawQuery, ";"):
			writeError(w, http.StatusBadRequest, "the query string holds ';', which does not separate parameters: use '&' between parameters and ',' between values")
			return
		case r.ContentLength > int64(s.limits.MaxBodyBytes):
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is %d bytes; at most %d are taken", r.ContentLength, s.limits.MaxBodyBytes))
			return
		}
		if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
			writeError(w, http.StatusBadRequest, "the query string is not valid ("+err.Error()+"); escape special characters and join parameters with '&'")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, int64(s.limits.MaxBodyBytes))
		h.ServeHTTP(w, r)
	})
}
