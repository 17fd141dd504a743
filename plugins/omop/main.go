// Command omop is the Tributary extractor plugin for OMOP CDM 5.3 and 5.4: it reads
// observation_period, person and visit_occurrence from PostgreSQL (through a read-only
// transaction) or from a folder of CDM CSV files, and streams registrations and events to the
// agent. The mapping from visit concepts to Tributary's measures is in README.md.
package main

import "github.com/tributary-health/tributary/plugins/sdk"

func main() { sdk.Serve(Extractor{}) }
