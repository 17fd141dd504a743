// Command fhir is the Tributary extractor plugin for FHIR R4 exports: bulk-export NDJSON
// (Patient, Encounter, EpisodeOfCare, Condition; plain or gzip-compressed) and Bundles. It
// streams registrations and events to the agent; the mapping is in README.md.
package main

import (
	// Practice machines often run Windows, which has no IANA time zone database.
	_ "time/tzdata"

	"github.com/tributary-health/tributary/plugins/sdk"
)

func main() { sdk.Serve(Extractor{}) }
