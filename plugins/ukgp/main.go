// Command ukgp is the Tributary extractor plugin for UK GP tables in the shapes OpenSAFELY's
// ehrQL names for the TPP and EMIS backends (patients, practice_registrations, apcs,
// emergency_care_attendances, opa, clinical_events), exported as CSV files, and for an NHS
// Digital HES admitted patient care extract in place of apcs. See README.md.
package main

import "github.com/tributary-health/tributary/plugins/sdk"

func main() { sdk.Serve(Extractor{}) }
