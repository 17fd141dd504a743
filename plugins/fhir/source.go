package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/klauspost/compress/gzip"
)

// maxLine bounds one NDJSON line: far above any Encounter or Patient, far below what would hurt
// the practice machine. A longer line is skipped, read past without being kept.
const maxLine = 16 << 20

// bufSize is the read buffer; large reads are markedly faster on big exports.
const bufSize = 1 << 20

// checkEvery is how many lines or entries are read between looks at the context.
const checkEvery = 4096

// file is one file of the export the extractor reads.
type file struct {
	path, name string
	bundle     bool   // a .json Bundle; otherwise NDJSON
	gz         bool   // gzip-compressed
	typ        string // NDJSON: the resourceType of its first line
}

// Resource types the extractor reads.
const (
	typePatient   = "Patient"
	typeEncounter = "Encounter"
	typeEpisode   = "EpisodeOfCare"
	typeCondition = "Condition"
)

// listFiles finds the export's files in dir: *.ndjson and *.ndjson.gz (bulk export, one
// resource type per file, named by its first line) and *.json (Bundles). Other files, and
// NDJSON files of other resource types, are left alone. The order is the names', so a run
// is deterministic.
func listFiles(dir string) ([]file, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot list dir: %w", err)
	}
	var out []file
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		lower := strings.ToLower(name)
		f := file{path: filepath.Join(dir, name), name: name}
		switch {
		case strings.HasSuffix(lower, ".ndjson"):
		case strings.HasSuffix(lower, ".ndjson.gz"):
			f.gz = true
		case strings.HasSuffix(lower, ".json"):
			f.bundle = true
		case strings.HasSuffix(lower, ".json.gz"):
			f.bundle, f.gz = true, true
		default:
			continue
		}
		if !f.bundle {
			if f.typ, err = firstType(f); err != nil {
				return nil, err
			}
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// open opens a file, through gzip when it is compressed.
func (f file) open() (io.ReadCloser, error) {
	fh, err := os.Open(f.path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", f.name, err)
	}
	if !f.gz {
		return fh, nil
	}
	zr, err := gzip.NewReader(bufio.NewReaderSize(fh, bufSize))
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("%s is not gzip-compressed data: %w", f.name, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, fh}, nil
}

// firstType reads the resourceType of an NDJSON file's first line; "" for an empty file or a
// first line without one.
func firstType(f file) (string, error) {
	var typ string
	err := f.lines(context.Background(), func(line []byte, _ int) error {
		var s scanner
		s.reset(line)
		if s.open('{') {
			for first := true; ; first = false {
				k, ok := s.key(first)
				if !ok {
					break
				}
				if string(k) == "resourceType" {
					v, _ := s.str()
					typ = string(v)
					break
				}
				s.skip()
			}
		}
		return errStop
	}, func(int) {})
	if errors.Is(err, errStop) {
		err = nil
	}
	return typ, err
}

var errStop = errors.New("stop")

// lines calls fn with each non-blank line of an NDJSON file and its number (from 1); a line
// longer than maxLine is read past and reported to tooLong instead. The line's bytes are
// valid until fn returns.
func (f file) lines(ctx context.Context, fn func(line []byte, n int) error, tooLong func(n int)) error {
	rc, err := f.open()
	if err != nil {
		return err
	}
	defer rc.Close()
	r := bufio.NewReaderSize(rc, bufSize)
	var long []byte
	for n := 1; ; n++ {
		if n%checkEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], line...)
			over := false
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = r.ReadSlice('\n')
				if !over && len(long)+len(line) > maxLine {
					over, long = true, long[:0]
				}
				if !over {
					long = append(long, line...)
				}
			}
			if over {
				tooLong(n)
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return fmt.Errorf("reading %s line %d: %w", f.name, n, err)
				}
				continue
			}
			line = long
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("reading %s line %d: %w", f.name, n, err)
		}
		if t := bytes.TrimSpace(line); len(t) > 0 {
			if ferr := fn(t, n); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

// entries calls fn with each entry of a Bundle (its JSON, with its number from 1), streaming
// through the file a entry at a time. A file that is not a JSON object fails; one without
// entries (the bulk export's manifest, say) gives none.
func (f file) entries(ctx context.Context, fn func(entry []byte, n int) error) error {
	rc, err := f.open()
	if err != nil {
		return err
	}
	defer rc.Close()
	dec := json.NewDecoder(bufio.NewReaderSize(rc, bufSize))
	bad := func(err error) error {
		return fmt.Errorf("%s is not a FHIR Bundle in JSON (at byte %d: %v); move it out of dir, or fix the export", f.name, dec.InputOffset(), err)
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		if err == nil {
			err = errors.New("not an object")
		}
		return bad(err)
	}
	n := 0
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return bad(err)
		}
		if k, _ := t.(string); k != "entry" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return bad(err)
			}
			continue
		}
		if t, err := dec.Token(); err != nil || t != json.Delim('[') {
			if err == nil {
				err = errors.New("entry is not an array")
			}
			return bad(err)
		}
		for dec.More() {
			n++
			if n%checkEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return bad(err)
			}
			if err := fn(raw, n); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return bad(err)
		}
	}
	return nil
}
