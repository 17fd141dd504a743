package server

import (
	"bytes"
	lru "container/list"
	"net/http"
	"sync"
)

// respCache keeps recent answers, keyed by the combined output they were computed from, the
// caller's role and practice, and the request, so a dashboard's repeated views are answered
// without recomputing. A new combine changes every key; old entries age out. It is bounded
// in entries and bytes.
type respCache struct {
	mu       sync.Mutex
	maxBytes int
	maxItems int
	bytes    int
	order    *lru.List // front: most recent
	items    map[string]*lru.Element
}

type cachedResp struct {
	key         string
	contentType string
	body        []byte
}

func newRespCache(maxItems, maxBytes int) *respCache {
	return &respCache{maxItems: maxItems, maxBytes: maxBytes, order: lru.New(), items: map[string]*lru.Element{}}
}

func (c *respCache) get(key string) (*cachedResp, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*cachedResp), true
}

// size is what an entry holds: its key (held twice, in the map and the entry), body and
// content type.
func (r *cachedResp) size() int { return 2*len(r.key) + len(r.body) + len(r.contentType) + 64 }

func (c *respCache) put(r *cachedResp) {
	if r.size() > c.maxBytes/8 {
		return // one answer may not crowd out the rest
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[r.key]; ok {
		return
	}
	c.items[r.key] = c.order.PushFront(r)
	c.bytes += r.size()
	for c.order.Len() > c.maxItems || c.bytes > c.maxBytes {
		old := c.order.Back()
		o := old.Value.(*cachedResp)
		c.order.Remove(old)
		delete(c.items, o.key)
		c.bytes -= o.size()
	}
}

// recorder captures a handler's answer.
type recorder struct {
	http.ResponseWriter
	code int
	buf  bytes.Buffer
}

func (r *recorder) WriteHeader(code int) { r.code = code; r.ResponseWriter.WriteHeader(code) }

func (r *recorder) Write(p []byte) (int, error) {
	r.buf.Write(p)
	return r.ResponseWriter.Write(p)
}

// cached serves h's answers from the cache; only successful answers are kept. The key holds
// the caller's role and practice, so one caller's answer never reaches another who may see
// less.
func (s *Server) cached(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		snap := s.snap.Load()
		if snap == nil {
			h(w, r)
			return
		}
		tok := caller(r)
		key := snap.ptr.ID + "\x00" + tok.Role + "\x00" + tok.Practice + "\x00" + r.URL.Path + "\x00" + r.URL.RawQuery
		if c, ok := s.responses.get(key); ok {
			w.Header().Set("Content-Type", c.contentType)
			w.Header().Set("X-Tributary-Cache", "hit")
			w.Write(c.body)
			return
		}
		rec := &recorder{ResponseWriter: w, code: http.StatusOK}
		h(rec, r)
		// Only cache an answer computed from the snapshot the key names.
		if rec.code == http.StatusOK && s.snap.Load() == snap {
			s.responses.put(&cachedResp{key: key, contentType: w.Header().Get("Content-Type"), body: bytes.Clone(rec.buf.Bytes())})
		}
	}
}
