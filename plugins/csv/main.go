// Command csv is the Tributary extractor plugin for a practice's own CSV exports (an EMIS Web
// or SystmOne search saved as CSV, or any other): its configuration names the files and
// columns and maps the practice's values onto event kinds and admission methods, so a practice
// manager sets it up without a developer. See README.md and examples/.
package main

import "github.com/tributary-health/tributary/plugins/sdk"

func main() { sdk.Serve(Extractor{}) }
