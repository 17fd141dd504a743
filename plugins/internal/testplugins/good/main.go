// Command good is a correct extractor that makes up a few patients. With config
// print_to_stdout = "yes" it also writes to stdout, which a plugin must never do.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/internal/testplugins"
	"github.com/tributary-health/tributary/plugins/sdk"
)

type good struct{}

func (good) Describe() sdk.Description {
	d := testplugins.Description
	d.Config = append(append([]sdk.ConfigKey(nil), d.Config...),
		sdk.ConfigKey{Name: "print_to_stdout", Help: "misbehave by writing to stdout (tests only)"},
		sdk.ConfigKey{Name: "admissions", Type: sdk.TypeBool, Default: "true", Help: "whether the source has hospital admissions"},
		sdk.ConfigKey{Name: "crossing_stays", Allowed: []string{"", "discharged", "started"},
			Help: "also send stays that cross a month end, following the rule (discharged: those discharged in the months too) or not (started: only those that start in them)"},
	)
	return d
}

func (good) ValidateConfig(config map[string]string) error {
	if n, _ := strconv.Atoi(config["rows"]); n < 0 {
		return fmt.Errorf("rows must be a whole number, 0 or more")
	}
	return nil
}

// Supplies leaves admissions out when the source has none, as a GP system's export without
// hospital data would.
func (good) Supplies(config map[string]string) (sdk.Supplies, error) {
	s := testplugins.Description.Supplies()
	if config["admissions"] == "false" {
		s.EventKinds = []string{formats.KindConsultation}
		s.Methods = false
	}
	return s, nil
}

var (
	_ sdk.ConfigValidator = good{}
	_ sdk.Supplier        = good{}
)

func (good) Extract(ctx context.Context, req sdk.Request, w *sdk.Writer) error {
	n := 10
	if v, ok := req.Config["rows"]; ok {
		n, _ = strconv.Atoi(v)
	}
	if req.Config["print_to_stdout"] == "yes" {
		fmt.Println("debugging output that should have gone to stderr")
	}
	req.Log.Info("making up patients", "count", n)
	req.Log.Warn("these patients are not real", "source", "testplugins")
	if req.Config["admissions"] == "false" {
		return testplugins.EmitWithout(req, w, n, formats.KindAdmission)
	}
	if err := testplugins.Emit(req, w, n); err != nil {
		return err
	}
	return crossingStays(req, w, req.Config["crossing_stays"])
}

// crossingStays sends, for the first patient, a stay from the last day of each month to the
// second day of the next, for every month boundary at or inside the edges of the request.
func crossingStays(req sdk.Request, w *sdk.Writer, rule string) error {
	if rule == "" {
		return nil
	}
	for m := req.From; m <= req.To+1; m++ {
		e := formats.Event{PatientKey: "patient-000000", Kind: formats.KindAdmission, Start: formats.DateOf(m.Start()) - 1, Method: formats.MethodEmergency}
		e.End = e.Start + 2
		send := formats.EventInMonths(e, req.From, req.To)
		if rule == "started" {
			send = e.Start.Month() >= req.From && e.Start.Month() <= req.To
		}
		if send {
			if err := w.Event(e); err != nil {
				return err
			}
		}
	}
	return nil
}

func main() {
	if path := os.Getenv(testplugins.MarkerEnv); path != "" {
		_ = os.WriteFile(path, []byte("started\n"), 0o600)
	}
	sdk.Serve(good{})
}
