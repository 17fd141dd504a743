package agent

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tributary-health/tributary/agent/config"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// TestCheckMeasuresSaysWhyAbsent: a source without diagnoses, A&E or discharge dates supplies
// the plain measures; the others are absent, each with the reason tributary-agent measures
// prints.
func TestCheckMeasuresSaysWhyAbsent(t *testing.T) {
	store, err := objstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := newAgent(t, store, map[string]sdk.Extractor{"tiny": tiny{}})
	c := CheckMeasures(context.Background(), a.Config, func(context.Context, config.Plugin) (Source, error) { return inProcess{tiny{}}, nil })
	why := map[string]string{}
	for _, x := range c.Absent {
		why[x.Measure] = x.Reason
	}
	for m, want := range map[string]string{
		"acsc_chronic_emergency":     "no source sends primary diagnoses in icd10 or snomedct (the definition's code systems)",
		"acute_not_usually_admitted": "no source sends primary diagnoses in icd10 or snomedct (the definition's code systems)",
		"readmissions_emergency_30d": "no source sends admissions' discharge dates",
		"ae_frequent_attenders":      "no source supplies ae_attendance events",
		"ae_attendances":             "no source supplies ae_attendance events",
	} {
		if why[m] != want {
			t.Errorf("%s: absent because %q, want %q", m, why[m], want)
		}
	}
	for _, m := range []string{"registered_patients", "consultations", "admissions_emergency", "patients_admitted_emergency"} {
		if _, gone := why[m]; gone {
			t.Errorf("%s absent: %s", m, why[m])
		}
	}
	if c.Definitions.Err != nil || c.Definitions.Federation != 0 {
		t.Errorf("without a coordinator key: %+v", c.Definitions)
	}
}

// TestCoordinatorKeySetting: coordinator_public_key takes the base64 key or a PEM file, and a
// value that is neither is a problem config check reports.
func TestCoordinatorKeySetting(t *testing.T) {
	pub, _, err := formats.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pemData, err := formats.MarshalPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "coordinator.pub"), pemData, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{base64.StdEncoding.EncodeToString(pub), "coordinator.pub", filepath.Join(dir, "coordinator.pub")} {
		got, err := CoordinatorKey(v, dir)
		if err != nil || !got.Equal(pub) {
			t.Errorf("%q: %v", v, err)
		}
	}
	if k, err := CoordinatorKey("", dir); k != nil || err != nil {
		t.Errorf("empty: %v %v", k, err)
	}
	if _, err := CoordinatorKey("no-such.pub", dir); err == nil {
		t.Error("a missing file was accepted")
	}
	store, err := objstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := newAgent(t, store, map[string]sdk.Extractor{"tiny": tiny{}})
	a.Config.CoordinatorPublicKey = "no-such.pub"
	c := CheckSetup(context.Background(), a.Config, func(context.Context, config.Plugin) (Source, error) { return inProcess{tiny{}}, nil })
	if !strings.Contains(strings.Join(c.Problems, "\n"), "coordinator_public_key") {
		t.Errorf("config check problems %v do not name coordinator_public_key", c.Problems)
	}
}
