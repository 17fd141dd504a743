package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/sdk"
	"github.com/tributary-health/tributary/plugins/sdk/csvread"
)

// SampleConfig is a commented example configuration.
//
//go:embed sample.toml
var SampleConfig string

// Extractor reads the template's CSV export. Its zero value is ready to use.
type Extractor struct{}

// The guards: a method whose signature drifts from the SDK's (say ValidateConfig(map[string]any))
// would otherwise compile, never be called, and silently turn the check off.
var (
	_ sdk.Extractor       = Extractor{}
	_ sdk.ConfigValidator = Extractor{}
)

// Describe says what the extractor supplies. It must not touch the data. The Config schema is
// applied by the SDK before ValidateConfig and Extract run: unknown keys are refused, the
// required dir must be set, defaults are filled in, and (being a path) the agent makes a
// relative dir absolute against its configuration file's folder.
func (Extractor) Describe() sdk.Description {
	return sdk.Description{
		Name:       "template",
		Version:    "0.3.0",
		RowKinds:   []string{formats.RowRegistrations, formats.RowEvents},
		EventKinds: []string{formats.KindConsultation, formats.KindOutpatient, formats.KindAE, formats.KindAdmission},
		Methods:    true,                             // admission_method holds NHS codes, so emergency and elective are known
		Diagnoses:  []string{formats.DiagnosisICD10}, // the optional diagnosis column
		Discharges: true,                             // the end column
		Config: []sdk.ConfigKey{
			{Name: "dir", Type: sdk.TypePath, Required: true, Help: "folder holding registrations.csv and events.csv"},
		},
	}
}

// ValidateConfig checks what the schema cannot: that the files are there. Its errors are shown
// to the practice manager as they are, so say what to do.
func (Extractor) ValidateConfig(config map[string]string) error {
	for _, name := range []string{"registrations.csv", "events.csv"} {
		path := filepath.Join(config["dir"], name)
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("cannot read %s (%v); set dir to the folder holding the export", path, err)
		}
	}
	return nil
}

// Extract emits every registration that overlaps the requested months, every event that
// starts in them, and every admission discharged in them: formats.EventInMonths, the rule the
// agent counts by (a stay's bed days count in the month of discharge, so a stay that began
// before the months still matters). A source row it cannot use is skipped with a reason; an
// unreadable file fails the run.
func (Extractor) Extract(ctx context.Context, req sdk.Request, w *sdk.Writer) error {
	first := formats.DateOf(req.From.Start())
	end := formats.DateOf((req.To + 1).Start()) // exclusive
	dir := req.Config["dir"]

	regs, err := csvread.Open(filepath.Join(dir, "registrations.csv"), csvread.Options{
		Required: []string{"patient", "sex", "birth_month", "registered_from", "registered_to"}, TrimSpace: true,
	})
	if err != nil {
		return err
	}
	defer regs.Close()
	cPatient, cSex, cBirth, cFrom, cTo := regs.Col("patient"), regs.Col("sex"), regs.Col("birth_month"), regs.Col("registered_from"), regs.Col("registered_to")
	err = regs.Each(ctx, func(f []string) error {
		r, ok := registration(f[cPatient], f[cSex], f[cBirth], f[cFrom], f[cTo])
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
	}, func() { w.Skip("registrations.csv: malformed row") })
	if err != nil {
		return err
	}

	events, err := csvread.Open(filepath.Join(dir, "events.csv"), csvread.Options{
		Required: []string{"patient", "setting", "start", "end"}, TrimSpace: true,
	})
	if err != nil {
		return err
	}
	defer events.Close()
	cPatient, cSetting, cStart, cEnd := events.Col("patient"), events.Col("setting"), events.Col("start"), events.Col("end")
	cMethod := events.Col("admission_method") // optional: -1 when the export has none
	cDiagnosis := events.Col("diagnosis")     // optional: the primary diagnosis, ICD-10
	notCodes := 0                             // diagnoses that are not ICD-10 codes
	defer func() {
		if notCodes > 0 {
			req.Log.Info("diagnoses that are not ICD-10 codes, sent as no diagnosis", "count", notCodes)
		}
	}()
	return events.Each(ctx, func(f []string) error {
		start, err1 := formats.ParseDate(f[cStart])
		end, err2 := optionalDate(f[cEnd])
		if errors.Join(err1, err2) != nil {
			w.Skip("unreadable event date")
			return nil
		}
		kind, known := settings[f[cSetting]]
		e := formats.Event{PatientKey: f[cPatient], Kind: kind, Start: start, End: end}
		if !formats.EventInMonths(e, req.From, req.To) {
			return nil // outside the requested months: not a skipped row, just not wanted
		}
		if !known {
			w.Skip("unknown event setting")
			return nil
		}
		if kind == formats.KindAdmission {
			e.Method = formats.AdmissionMethodFromNHS(csvread.Field(f, cMethod))
		}
		// The primary diagnosis is optional. Put it in the contract's canonical form; a value
		// that is not a code (free text, say) is left out, not a reason to lose the event. It
		// never leaves the practice: the agent counts events, never codes.
		if dx := csvread.Field(f, cDiagnosis); dx != "" {
			if code, ok := formats.NormalizeDiagnosis(formats.DiagnosisICD10, dx); ok {
				e.DiagnosisCode, e.DiagnosisSystem = code, formats.DiagnosisICD10
			} else {
				notCodes++
			}
		}
		if err := w.Event(e); err != nil {
			w.Skip("event: " + fieldOf(err))
		}
		return nil
	}, func() { w.Skip("events.csv: malformed row") })
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

func registration(patient, sexCode, birthMonth, fromDay, toDay string) (formats.Registration, bool) {
	birth, err1 := formats.ParseMonth(birthMonth)
	from, err2 := formats.ParseDate(fromDay)
	to, err3 := optionalDate(toDay)
	if errors.Join(err1, err2, err3) != nil {
		return formats.Registration{}, false
	}
	sex, ok := sexes[sexCode]
	if !ok {
		sex = sexCode // left for the contract check to refuse, with the field named
	}
	return formats.Registration{PatientKey: patient, Sex: sex, BirthMonth: birth, From: from, To: to}, true
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
