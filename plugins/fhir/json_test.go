package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseResource checks the scanner against encoding/json: any valid JSON object is read
// without an error, and the fields the extractor maps come out as encoding/json reads them.
// (The scanner may accept some invalid JSON inside values it skips; it never rejects valid.)
func FuzzParseResource(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testcases", "*", "*.ndjson"))
	for _, p := range files {
		data, _ := os.ReadFile(p)
		for _, line := range strings.Split(string(data), "\n") {
			f.Add([]byte(line))
		}
	}
	f.Add([]byte(`{"resourceType":"Encounter","class":{"code":"A\u004dB"},"period":{"start":"2021-01-01\u0054"},"x":[1,-2.5e3,true,null,{"y":"\"]}"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s scanner
		var r resource
		s.reset(data)
		parseResource(&s, &r)
		s.end()
		var m map[string]any
		if json.Unmarshal(data, &m) != nil {
			return // not a JSON object: the scanner may accept or refuse it
		}
		if s.err != nil {
			t.Fatalf("valid JSON refused: %q", data)
		}
		if !utf8.Valid(data) {
			return // encoding/json reads invalid UTF-8 as U+FFFD; the scanner keeps the bytes
		}
		// Keys are matched exactly, and a repeated key's last value counts, in both readers.
		subject := str(m, "subject", "reference")
		if _, ok := m["patient"]; ok {
			return // subject and patient are one field to the scanner; their order decides
		}
		class := str(m, "class", "code")
		if _, isList := m["class"].([]any); isList {
			class = string(r.class)
		}
		got := []string{string(r.resourceType), string(r.id), string(r.gender), string(r.birthDate), string(r.status), string(r.class), string(r.start), string(r.end), string(r.subject)}
		exp := []string{str(m, "resourceType"), str(m, "id"), str(m, "gender"), str(m, "birthDate"), str(m, "status"), class, str(m, "period", "start"), str(m, "period", "end"), subject}
		for i := range got {
			if got[i] != exp[i] {
				t.Fatalf("field %d: scanner %q, encoding/json %q, in %q", i, got[i], exp[i], data)
			}
		}
	})
}
