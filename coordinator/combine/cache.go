package combine

import (
	"sync"
	"time"

	"github.com/tributary-health/tributary/internal/objstore"
)

// Cache holds verified practice runs between runs of a long-lived coordinator (see
// Options.Cache): a file whose key and SHA-256 match one verified before, listed by a
// manifest that verified in this run, and whose listed size and modification time have not
// changed since, is not fetched or parsed again. The manifest's signature covers the file's
// SHA-256, so a file reused this way is exactly the one verified; one rewritten in the store
// since (a new modification time) is read and verified afresh, and quarantined if it fails.
// Entries for files no run has used since the previous successful Run are dropped. A Cache is
// safe for concurrent use by one Run at a time.
type Cache struct {
	mu    sync.Mutex
	files map[string]cachedFile
	seen  map[string]bool
	hits  int
	// tables are the practice tables the last Run wrote, by practice: a practice whose
	// combined inputs are the same (tableSignature) has the same table, so a re-combine
	// after one practice's new run encodes one table, not every practice's.
	tables     map[string]cachedTable
	tablesSeen map[string]bool
	tableHits  int
}

type cachedTable struct {
	signature string
	ref       ObjectRef
	rows      int64
}

type cachedFile struct {
	sha256   string
	size     int64
	modified time.Time
	values   *runValues // shared: never changed once made
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	return &Cache{files: map[string]cachedFile{}, tables: map[string]cachedTable{}}
}

// Hits returns how many files the last Run took from the cache rather than the store.
func (c *Cache) Hits() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits
}

// TableHits returns how many practice tables the last Run reused rather than encoded.
func (c *Cache) TableHits() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tableHits
}

// Len returns how many verified files the cache holds.
func (c *Cache) Len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.files)
}

func (c *Cache) begin() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.seen, c.hits = map[string]bool{}, 0
	c.tablesSeen, c.tableHits = map[string]bool{}, 0
	c.mu.Unlock()
}

func (c *Cache) end() {
	if c == nil {
		return
	}
	c.mu.Lock()
	for k := range c.files {
		if !c.seen[k] {
			delete(c.files, k)
		}
	}
	c.seen = nil
	for p := range c.tables {
		if !c.tablesSeen[p] {
			delete(c.tables, p)
		}
	}
	c.tablesSeen = nil
	c.mu.Unlock()
}

func (c *Cache) get(key, sha256 string, listed objstore.Info, m *manifest) (*runValues, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.files[key]
	if !ok || f.sha256 != sha256 || listed.Key != key || f.size != listed.Size || !f.modified.Equal(listed.Modified) || f.values.m.RunID != m.RunID || f.values.m.Practice != m.Practice {
		return nil, false
	}
	if c.seen != nil {
		c.seen[key] = true
	}
	c.hits++
	rv := *f.values
	rv.m = m // this run's verified manifest
	return &rv, true
}

func (c *Cache) put(key, sha256 string, listed objstore.Info, rv *runValues) {
	if c == nil || listed.Key != key {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.files[key] = cachedFile{sha256: sha256, size: listed.Size, modified: listed.Modified, values: rv}
	if c.seen != nil {
		c.seen[key] = true
	}
}

// table returns the practice table stored for practice under signature by an earlier Run;
// the caller reports its use with reused.
func (c *Cache) table(practice, signature string) (cachedTable, bool) {
	if c == nil {
		return cachedTable{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tablesSeen != nil {
		c.tablesSeen[practice] = true
	}
	t, ok := c.tables[practice]
	return t, ok && t.signature == signature
}

// putTable records the practice table a Run stored for practice.
func (c *Cache) putTable(practice string, t cachedTable) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tables[practice] = t
	if c.tablesSeen != nil {
		c.tablesSeen[practice] = true
	}
}

// reused counts a practice table taken from the cache.
func (c *Cache) reused() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.tableHits++
	c.mu.Unlock()
}
