package formats

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"
)

const sampleDefinition = `version = 1
[[measure]]
name = "falls_over_65"
version = 1
title = "Falls admissions"
description = "emergency admissions for a fall"
source = "federation"
count = "events"
kind = "admission"
method = "emergency"
[[measure.codes]]
system = "icd10"
match = "prefix"
codes = ["W19", "w01", "R29.6", "W01"]
`

func TestDefinitionCanonicalAndDigest(t *testing.T) {
	defs, err := ParseDefinitions([]byte(sampleDefinition))
	if err != nil {
		t.Fatal(err)
	}
	d := defs[0]
	if got := strings.Join(d.Codes[0].Codes, " "); got != "R296 W01 W19" {
		t.Errorf("codes %q, want normalised, sorted, without duplicates", got)
	}
	// Same counts, other words: same digest. Another code: another digest.
	other := d.clone()
	other.Description, other.Title, other.Version = "something else", "T", 2
	if other.Digest() != d.Digest() {
		t.Error("a description change changed the digest")
	}
	changed := d.clone()
	changed.Codes[0].Codes = append(changed.Codes[0].Codes, "W10")
	if err := changed.Validate(); err != nil {
		t.Fatal(err)
	}
	if changed.Digest() == d.Digest() {
		t.Error("a code-list change kept the digest")
	}
	if len(d.Digest()) != 64 {
		t.Errorf("digest %q", d.Digest())
	}
	for _, tc := range []struct{ code string }{{"W199"}, {"R296"}} {
		if !d.MatchesDiagnosis(DiagnosisICD10, tc.code) {
			t.Errorf("%s does not match", tc.code)
		}
	}
	if d.MatchesDiagnosis(DiagnosisICD10, "W20") || d.MatchesDiagnosis(DiagnosisSNOMED, "195967001") || d.MatchesDiagnosis("", "") {
		t.Error("matches what it should not")
	}
}

func TestDefinitionRefused(t *testing.T) {
	for name, edit := range map[string]func(string) string{
		"unknown key":        func(s string) string { return s + "\nfoo = 1\n" },
		"bad count":          func(s string) string { return strings.Replace(s, `count = "events"`, `count = "people"`, 1) },
		"snomed prefix":      func(s string) string { return strings.Replace(s, `system = "icd10"`, `system = "snomedct"`, 1) },
		"bad code":           func(s string) string { return strings.Replace(s, `"W19"`, `"19W"`, 1) },
		"patients no rule":   func(s string) string { return strings.Replace(s, `count = "events"`, `count = "patients"`, 1) },
		"method on A&E":      func(s string) string { return strings.Replace(s, `kind = "admission"`, `kind = "ae_attendance"`, 1) },
		"no source":          func(s string) string { return strings.Replace(s, `source = "federation"`, `source = ""`, 1) },
		"other file version": func(s string) string { return strings.Replace(s, "version = 1\n[[", "version = 2\n[[", 1) },
		"readmission no days": func(s string) string {
			return strings.Replace(s, `method = "emergency"`, "method = \"emergency\"\nrule = { type = \"readmission\" }", 1)
		},
	} {
		if _, err := ParseDefinitions([]byte(edit(sampleDefinition))); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestBuiltinDefinitions(t *testing.T) {
	defs := BuiltinDefinitions()
	names := MeasureNames(defs)
	for i, m := range Measures {
		if names[i] != m {
			t.Fatalf("built-ins start %v, want the first catalogue %v", names[:len(Measures)], Measures)
		}
	}
	for _, want := range []string{"acsc_chronic_emergency", "acute_not_usually_admitted", "readmissions_emergency_30d", "ae_frequent_attenders"} {
		d, ok := BuiltinDefinition(want)
		if !ok {
			t.Fatalf("no built-in %s", want)
		}
		if d.Source == "" || d.Description == "" {
			t.Errorf("%s has no source or description", want)
		}
	}
	acsc, _ := BuiltinDefinition("acsc_chronic_emergency")
	// The published list: asthma J45 and diabetes complications E10.0-E14.8, not E11.9.
	for code, want := range map[string]bool{"J459": true, "E112": true, "E119": false, "I219": false, "I10": true, "I119": true, "I110": true} {
		if got := acsc.MatchesDiagnosis(DiagnosisICD10, code); got != want {
			t.Errorf("acsc %s: %v, want %v", code, got, want)
		}
	}
	if !acsc.MatchesDiagnosis(DiagnosisSNOMED, "195967001") || acsc.MatchesDiagnosis(DiagnosisSNOMED, "44054006") {
		t.Error("acsc SNOMED CT list: asthma must match, uncomplicated type 2 diabetes must not")
	}
	// Changing the copy does not change the built-ins.
	defs[0].Name = "x"
	if BuiltinDefinitions()[0].Name != Measures[0] {
		t.Error("BuiltinDefinitions returns shared state")
	}
}

func TestFederationMeasuresSigned(t *testing.T) {
	priv, otherPriv := seedKey(3), seedKey(4)
	pub := priv.Public().(ed25519.PublicKey)
	defs, err := ParseDefinitions([]byte(sampleDefinition))
	if err != nil {
		t.Fatal(err)
	}
	f := &FederationMeasures{FormatVersion: DefinitionVersion, Updated: time.Unix(1700000000, 0).UTC(), Measures: defs}
	data, err := SignFederationMeasures(f, priv)
	if err != nil {
		t.Fatal(err)
	}
	got, err := VerifyFederationMeasures(data, pub)
	if err != nil {
		t.Fatal(err)
	}
	if got.Measures[0].Digest() != defs[0].Digest() {
		t.Error("digest changed through signing")
	}
	forged, err := SignFederationMeasures(f, otherPriv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyFederationMeasures(forged, pub); !errors.Is(err, ErrSignature) {
		t.Errorf("forged file: %v, want ErrSignature", err)
	}
	// A registry envelope is not a measures file.
	reg, err := SignRegistry(&Registry{FormatVersion: RegistryVersion}, priv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyFederationMeasures(reg, pub); err == nil {
		t.Error("a registry was read as measures")
	}
	// A first-catalogue name may not be redefined.
	bad := &FederationMeasures{FormatVersion: DefinitionVersion, Measures: []Definition{defs[0].clone()}}
	bad.Measures[0].Name = AdmissionsEmergency
	if _, err := SignFederationMeasures(bad, priv); err == nil {
		t.Error("a federation redefined a first-catalogue measure")
	}
}

// TestFirstCatalogueDefinitions: the first catalogue's built-in definitions say what
// MeasureDescriptions says, and count what the agent counted before measures were data.
func TestFirstCatalogueDefinitions(t *testing.T) {
	for _, m := range Measures {
		d, ok := BuiltinDefinition(m)
		if !ok {
			t.Fatalf("no built-in definition of %s", m)
		}
		if d.Description != MeasureDescriptions[m] {
			t.Errorf("%s: definition says %q, MeasureDescriptions %q", m, d.Description, MeasureDescriptions[m])
		}
		if len(d.Codes) != 0 || d.Lookback() != 0 {
			t.Errorf("%s: a first-catalogue measure has no code list and no look-back", m)
		}
	}
}
