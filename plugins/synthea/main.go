// Command synthea is the Tributary extractor plugin for Synthea CSV exports: it reads
// patients.csv and encounters.csv and streams registrations and events to the agent. The
// mapping from Synthea's encounter classes to Tributary's measures is in README.md.
package main

import (
	// Practice machines often run Windows, which has no IANA time zone database; embedding
	// it makes the timezone key work everywhere.
	_ "time/tzdata"

	"github.com/tributary-health/tributary/plugins/sdk"
)

func main() { sdk.Serve(Extractor{}) }
