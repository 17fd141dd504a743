// Package synthconv rewrites a Synthea CSV export (synthgen's, or a real one) in the other
// shapes practices hold, for benchmarks and tests: FHIR R4 bulk NDJSON as Synthea's own FHIR
// exporter writes it (ToFHIR), OMOP CDM 5.4 CSV files as Eunomia ships them (ToOMOP), and UK GP
// tables in ehrQL's TPP shapes (ToUKGP). The same people and contacts come out in each shape, so
// every extractor can be measured over the same practice.
package synthconv

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// table reads a CSV file by header name, one row at a time.
type table struct {
	f   *os.File
	r   *csv.Reader
	col map[string]int
	rec []string
}

func openTable(dir, name string) (*table, error) {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("synthconv: %w", err)
	}
	r := csv.NewReader(f)
	r.ReuseRecord = true
	head, err := r.Read()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("synthconv: %s: %w", name, err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.TrimPrefix(strings.TrimSpace(h), "\ufeff")] = i
	}
	return &table{f: f, r: r, col: col}, nil
}

// next reads the next row; false at the end.
func (t *table) next() (bool, error) {
	rec, err := t.r.Read()
	if errors.Is(err, io.EOF) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("synthconv: %w", err)
	}
	t.rec = rec
	return true, nil
}

// get is the row's value of column name, "" when the file has no such column.
func (t *table) get(name string) string {
	if i, ok := t.col[name]; ok && i < len(t.rec) {
		return t.rec[i]
	}
	return ""
}

func (t *table) close() { t.f.Close() }

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c < 0x20:
			b = append(b, fmt.Sprintf(`\u%04x`, c)...)
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
