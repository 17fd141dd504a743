package demo

import (
	"bufio"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/tributary-health/tributary/formats"
)

// Shape is the kind of export a practice folder holds, and so the extractor that reads it. Its
// value is the extractor's name: the plugin binary is that name in Options.PluginDir.
type Shape string

// The shapes the demo recognises.
const (
	ShapeSynthea Shape = "synthea" // Synthea CSV: patients.csv and encounters.csv
	ShapeFHIR    Shape = "fhir"    // FHIR R4: bulk-export NDJSON or Bundles (.ndjson, .json, gzipped or not)
	ShapeOMOP    Shape = "omop"    // OMOP CDM CSV: person.csv and visit_occurrence.csv (either case)
	ShapeUKGP    Shape = "ukgp"    // UK GP tables in ehrQL's shapes: patients.csv and practice_registrations.csv
)

// Shapes lists the shapes, each with the files that tell it, for people.
var Shapes = []struct {
	Shape Shape
	What  string
}{
	{ShapeSynthea, "Synthea CSV (patients.csv and encounters.csv)"},
	{ShapeFHIR, "FHIR R4 NDJSON or Bundles (*.ndjson, *.ndjson.gz, *.json)"},
	{ShapeOMOP, "OMOP CDM CSV (person.csv and visit_occurrence.csv, either case)"},
	{ShapeUKGP, "UK GP tables in ehrQL's shapes (patients.csv and practice_registrations.csv)"},
}

// ErrUnknownShape is a practice folder the demo cannot recognise; its error names the folder
// and the shapes it knows.
var ErrUnknownShape = errors.New("not a shape the demo knows")

func knownShapes() string {
	var s []string
	for _, x := range Shapes {
		s = append(s, x.What)
	}
	return strings.Join(s, "; ")
}

// DetectShape says which export the folder dir holds, from the names of its files (never
// their contents beyond a file's name).
func DetectShape(dir string) (Shape, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	has := map[string]bool{}
	fhir := false
	for _, e := range entries {
		if !e.Type().IsRegular() && e.Type()&os.ModeSymlink == 0 {
			continue
		}
		name := strings.ToLower(e.Name())
		has[name] = true
		for _, ext := range []string{".ndjson", ".ndjson.gz", ".json", ".json.gz"} {
			if strings.HasSuffix(name, ext) {
				fhir = true
			}
		}
	}
	switch {
	case has["patients.csv"] && has["encounters.csv"]:
		return ShapeSynthea, nil
	case has["patients.csv"] && has["practice_registrations.csv"]:
		return ShapeUKGP, nil
	case has["person.csv"] && (has["visit_occurrence.csv"] || has["observation_period.csv"]):
		return ShapeOMOP, nil
	case fhir:
		return ShapeFHIR, nil
	}
	return "", fmt.Errorf("practice folder %s: %w; it knows %s", filepath.Base(dir), ErrUnknownShape, knownShapes())
}

// pluginConfig is the extractor's configuration for a practice folder of a shape.
func pluginConfig(shape Shape, dir string) map[string]string {
	c := map[string]string{"dir": dir}
	switch shape {
	case ShapeOMOP, ShapeUKGP, ShapeFHIR:
		c["key_salt"] = "demo " + filepath.Base(dir)
	}
	return c
}

// activityMonths counts a practice's contacts by month, for the demo's choice of months and
// to tell a practice with none in them: Synthea's encounters; OMOP's visits; the UK GP tables'
// admissions, A&E and outpatient attendances; FHIR bulk Encounters (a folder of Bundles is
// not scanned: known is false).
func activityMonths(shape Shape, dir string, loc *time.Location) (months map[formats.Month]int, known bool, err error) {
	switch shape {
	case ShapeSynthea:
		m, err := encounterMonths(filepath.Join(dir, "encounters.csv"), loc)
		return m, err == nil, err
	case ShapeOMOP:
		m := map[formats.Month]int{}
		err := csvDateMonths(dir, "visit_occurrence.csv", []string{"visit_start_date"}, m)
		return m, err == nil, err
	case ShapeUKGP:
		m := map[formats.Month]int{}
		for file, cols := range map[string][]string{
			"apcs.csv":                       {"admission_date", "ADMIDATE"},
			"emergency_care_attendances.csv": {"arrival_date"},
			"opa.csv":                        {"appointment_date"},
		} {
			if err := csvDateMonths(dir, file, cols, m); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, false, err
			}
		}
		return m, true, nil
	case ShapeFHIR:
		return fhirEncounterMonths(dir, loc)
	}
	return nil, false, nil
}

// csvDateMonths adds the months of the first of cols that file (matched in either case) has;
// values that are not YYYY-MM-DD… are left to the plugin.
func csvDateMonths(dir, file string, cols []string, out map[formats.Month]int) error {
	path := filepath.Join(dir, file)
	if entries, err := os.ReadDir(dir); err == nil {
		for _, e := range entries {
			if strings.EqualFold(e.Name(), file) {
				path = filepath.Join(dir, e.Name())
			}
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", file, err)
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReaderSize(f, 1<<20))
	r.ReuseRecord = true
	r.FieldsPerRecord = -1
	head, err := r.Read()
	if err != nil {
		return fmt.Errorf("%s has no header row", file)
	}
	col := -1
	for _, want := range cols {
		for i, h := range head {
			if col < 0 && strings.EqualFold(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")), want) {
				col = i
			}
		}
	}
	if col < 0 {
		return fmt.Errorf("%s has no %s column", file, strings.Join(cols, " or "))
	}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				continue // the plugin skips and reports it
			}
			return fmt.Errorf("reading %s: %w", file, err)
		}
		if col >= len(rec) || len(rec[col]) < 10 {
			continue
		}
		d, err := time.Parse("2006-01-02", rec[col][:10])
		if err != nil {
			continue
		}
		out[formats.MonthOf(d)]++
	}
}

// encounterStart finds an Encounter's period.start in a bulk-export line.
var (
	encounterType  = regexp.MustCompile(`"resourceType"\s*:\s*"Encounter"`)
	encounterStart = regexp.MustCompile(`"period"\s*:\s*\{[^}]*"start"\s*:\s*"([^"]+)"`)
)

// fhirEncounterMonths counts the Encounters of a folder's NDJSON files by the month of
// period.start in loc. A folder with no Encounter NDJSON (Bundles only) is not known.
func fhirEncounterMonths(dir string, loc *time.Location) (map[formats.Month]int, bool, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, false, err
	}
	var names []string
	for _, e := range entries {
		n := strings.ToLower(e.Name())
		if strings.HasSuffix(n, ".ndjson") || strings.HasSuffix(n, ".ndjson.gz") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	out := map[formats.Month]int{}
	found := false
	for _, name := range names {
		if err := func() error {
			f, err := os.Open(filepath.Join(dir, name))
			if err != nil {
				return err
			}
			defer f.Close()
			var r io.Reader = f
			if strings.HasSuffix(strings.ToLower(name), ".gz") {
				gz, err := gzip.NewReader(f)
				if err != nil {
					return fmt.Errorf("%s is not gzip: %w", name, err)
				}
				defer gz.Close()
				r = gz
			}
			sc := bufio.NewScanner(r)
			sc.Buffer(make([]byte, 1<<20), 16<<20)
			first := true
			for sc.Scan() {
				line := sc.Bytes()
				if first {
					first = false
					if !encounterType.Match(line) {
						return nil // one resource type per file: not Encounters
					}
				}
				m := encounterStart.FindSubmatch(line)
				if m == nil {
					continue
				}
				found = true
				if t, err := time.Parse(time.RFC3339, string(m[1])); err == nil {
					out[formats.MonthOf(t.In(loc))]++
				} else if t, err := time.Parse("2006-01-02", string(m[1])); err == nil {
					out[formats.MonthOf(t)]++
				}
			}
			if sc.Err() != nil {
				return fmt.Errorf("reading %s: %w", name, sc.Err())
			}
			return nil
		}(); err != nil {
			return nil, false, err
		}
	}
	return out, found, nil
}
