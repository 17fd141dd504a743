// Command template is a minimal Tributary extractor to copy: it reads two small CSV files,
// registrations.csv and events.csv, from the folder named by its "dir" configuration key and
// emits the contract's rows. See README.md for how to turn it into your own plugin.
package main

import "github.com/tributary-health/tributary/plugins/sdk"

func main() { sdk.Serve(Extractor{}) }
