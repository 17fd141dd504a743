package main

import (
	"context"
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// SampleConfig is a commented example configuration.
//
//go:embed sample.toml
var SampleConfig string

// Extractor reads the template's CSV export. Its zero value is ready to use.
type Extractor struct{}

// Describe says what the extractor supplies. It must not touch the data.
func (Extractor) Describe() sdk.Description {
	return sdk.Description{
		Name:       "template",
		Version:    "0.1.0",
		RowKinds:   []string{formats.RowRegistrations, formats.RowEvents},
		EventKinds: []string{formats.KindConsultation, formats.KindOutpatient, formats.KindAE, formats.KindAdmission},
		Methods:    true, // admission_method holds NHS codes, so emergency and elective are known
		Config: []sdk.ConfigKey{
			{Name: "dir", Help: "folder holding registrations.csv and events.csv", Required: true},
		},
	}
}

// ValidateConfig checks the configuration before any run; its errors are shown to the
// practice manager as they are, so say what to do.
func (Extractor) ValidateConfig(config map[string]string) error {
	for k := range config {
		if k != "dir" {
			return fmt.Errorf("unknown key %q; the template has only dir", k)
		}
	}
	for _, name := range []string{"registrations.csv", "events.csv"} {
		path := filepath.Join(config["dir"], name)
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("cannot read %s (%v); set dir to the folder holding the export", path, err)
		}
	}
	return nil
}

// Extract emits every registration that overlaps the requested months and every event that
// starts in them. A source row it cannot use is skipped with a reason; an unreadable file
// fails the run.
func (Extractor) Extract(ctx context.Context, req sdk.Request, w *sdk.Writer) error {
	first := formats.DateOf(req.From.Start())
	end := formats.DateOf((req.To + 1).Start()) // exclusive
	dir := req.Config["dir"]

	err := eachRow(ctx, filepath.Join(dir, "registrations.csv"), 5, func(f []string) error {
		r, ok := registration(f)
		if !ok {
			w.Skip("unreadable registration row")
			return nil
		}
		if r.From >= end || (r.To != formats.NoEnd && r.To <= first) {
			return nil // not registered in the requested months
		}
		if err := w.Registration(r); err != nil {
			// The row parsed but breaks the contract (say, an unknown sex code). The
			// error names the field, never the value, so it is safe to use as a reason.
			w.Skip("registration: " + fieldOf(err))
		}
		return nil
	})
	if err != nil {
		return err
	}
	return eachRow(ctx, filepath.Join(dir, "events.csv"), 5, func(f []string) error {
		start, err := formats.ParseDate(f[2])
		if err != nil {
			w.Skip("unreadable event start date")
			return nil
		}
		if start < first || start >= end {
			return nil // outside the requested months: not a skipped row, just not wanted
		}
		e, ok := event(start, f)
		if !ok {
			w.Skip("unreadable or unknown event row")
			return nil
		}
		if err := w.Event(e); err != nil {
			w.Skip("event: " + fieldOf(err))
		}
		return nil
	})
}

// sexes maps the source's codes onto the contract's.
var sexes = map[string]string{"F": "female", "M": "male", "U": "unknown"}

// settings maps the source's care settings onto the contract's event kinds.
var settings = map[string]string{
	"GP": formats.KindConsultation,
	"OP": formats.KindOutpatient,
	"AE": formats.KindAE,
	"IP": formats.KindAdmission,
}

func registration(f []string) (formats.Registration, bool) {
	birth, err1 := formats.ParseMonth(f[2])
	from, err2 := formats.ParseDate(f[3])
	to, err3 := optionalDate(f[4])
	if errors.Join(err1, err2, err3) != nil {
		return formats.Registration{}, false
	}
	sex, ok := sexes[f[1]]
	if !ok {
		sex = f[1] // left for the contract check to refuse, with the field named
	}
	return formats.Registration{PatientKey: f[0], Sex: sex, BirthMonth: birth, From: from, To: to}, true
}

func event(start formats.Date, f []string) (formats.Event, bool) {
	kind, ok := settings[f[1]]
	end, err := optionalDate(f[3])
	if !ok || err != nil {
		return formats.Event{}, false
	}
	e := formats.Event{PatientKey: f[0], Kind: kind, Start: start, End: end}
	if kind == formats.KindAdmission {
		e.Method = formats.AdmissionMethodFromNHS(f[4])
	}
	return e, true
}

func optionalDate(s string) (formats.Date, error) {
	if s == "" {
		return formats.NoEnd, nil
	}
	return formats.ParseDate(s)
}

// fieldOf turns a formats validation error into a short reason. formats errors name the field
// and never the value, so the text is safe to keep.
func fieldOf(err error) string {
	var fe *formats.Error
	if errors.As(err, &fe) {
		return fe.Detail
	}
	return "invalid row"
}

// eachRow calls fn with the fields of every data row of a CSV file with a header and n
// columns. Errors name the file and line, never a value.
func eachRow(ctx context.Context, path string, n int, fn func([]string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = n
	r.ReuseRecord = true
	if _, err := r.Read(); err != nil {
		return fmt.Errorf("read the header of %s: %w", path, err)
	}
	for line := 2; ; line++ {
		if line%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return ctx.Err()
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return fmt.Errorf("%s line %d is not valid CSV with %d columns; fix the export", path, pe.Line, n)
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
}
