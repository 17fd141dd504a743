// Package sdk is what an extractor plugin imports: a small Extractor interface, a Writer that
// builds the contract's Arrow batches for the author, and Serve, which hides go-plugin.
package sdk

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/tributary-health/tributary/formats"
)

// Extractor reads a practice's own clinical data and emits canonical rows. It is all a plugin
// author implements; Serve does the rest.
//
// Describe must be cheap and must not touch the data. Extract emits the rows of the requested
// months (see Request) through w and returns nil; any error it returns (or a panic) fails the
// run with that error. It must return promptly once ctx is done.
type Extractor interface {
	Describe() Description
	Extract(ctx context.Context, req Request, w *Writer) error
}

// ConfigValidator is optional: an Extractor that implements it has its configuration checked
// before any Extract, and its error is shown to the practice manager as it is. The SDK has
// applied the Description's ConfigKey schema first (unknown keys refused, types checked,
// defaults filled), so ValidateConfig checks only what the schema cannot say: that a folder
// exists, that a time zone is known. A template's guard, so that a mistyped method cannot
// silently turn the check off:
//
//	var _ sdk.ConfigValidator = Extractor{}
type ConfigValidator interface {
	ValidateConfig(config map[string]string) error
}

// Supplier is optional: an Extractor whose supplies depend on its configuration says, for a
// configuration that passed ValidateConfig, which row kinds, event kinds and admission methods
// it supplies with it. A UK GP extractor reading a folder without the hospital admissions
// file supplies no admissions: the agent then leaves admissions and bed days out of the
// practice's figures, where an extractor that only had Describe would report zeros. The answer
// may only narrow Describe's lists, never widen them. An Extractor that does not implement it
// supplies what Describe lists, with every configuration.
type Supplier interface {
	Supplies(config map[string]string) (Supplies, error)
}

// Supplies is what an extractor can send for one configuration.
type Supplies struct {
	RowKinds   []string // formats.RowRegistrations and/or formats.RowEvents
	EventKinds []string // which formats.Kind* values it emits
	Methods    bool     // whether it tells emergency from elective admissions
	Diagnoses  []string // code systems (formats.Diagnosis*) of the primary diagnoses it sends
	Discharges bool     // whether it sends admissions' discharge dates
}

// Description says what an extractor is and what it can supply with some configuration.
type Description struct {
	Name       string      // lower-case, e.g. "synthea"
	Version    string      // semantic version of the extractor
	RowKinds   []string    // formats.RowRegistrations and/or formats.RowEvents
	EventKinds []string    // which formats.Kind* values it can emit
	Methods    bool        // whether it can tell emergency from elective admissions
	Diagnoses  []string    // code systems (formats.Diagnosis*) of the primary diagnoses it can send
	Discharges bool        // whether it can send admissions' discharge dates
	Config     []ConfigKey // the keys of its configuration (see ConfigKey)
}

// Supplies is what the description lists: the most the extractor can supply.
func (d Description) Supplies() Supplies {
	return Supplies{RowKinds: d.RowKinds, EventKinds: d.EventKinds, Methods: d.Methods, Diagnoses: d.Diagnoses, Discharges: d.Discharges}
}

// PathKeys names the configuration keys whose values are paths on the practice machine, which
// the agent makes absolute against its configuration file's folder: the keys of TypePath and,
// for a key with no type (a plugin built before types existed), by the documented naming
// convention: a key named dir, path, file or folder, or ending in _dir, _path, _file or
// _folder.
func (d Description) PathKeys() []string {
	var out []string
	for _, k := range d.Config {
		if k.Type == TypePath || (k.Type == "" && pathName(k.Name)) {
			out = append(out, k.Name)
		}
	}
	return out
}

// ResolvePaths returns config with the values of pathKeys (Description.PathKeys) that are
// relative paths made absolute against dir, the folder of the file the configuration was read
// from. It is how the agent treats its [plugins.config] tables, and the conformance check its
// --config file, so a relative path means the same to both. An empty dir changes nothing.
func ResolvePaths(config map[string]string, pathKeys []string, dir string) map[string]string {
	if dir == "" || len(config) == 0 || len(pathKeys) == 0 {
		return config
	}
	out := make(map[string]string, len(config))
	for k, v := range config {
		out[k] = v
	}
	for _, k := range pathKeys {
		if v := strings.TrimSpace(out[k]); v != "" && !filepath.IsAbs(v) {
			out[k] = filepath.Join(dir, v)
		}
	}
	return out
}

func pathName(name string) bool {
	for _, w := range []string{"dir", "path", "file", "folder"} {
		if name == w || strings.HasSuffix(name, "_"+w) {
			return true
		}
	}
	return false
}

// Request is one extraction. Extract emits every registration that overlaps the months From..To
// (inclusive), every event that starts in them, and every admission whose stay ends in them
// (its bed days are counted in the month of discharge); see the plugin guide's "Which rows to
// send".
type Request struct {
	From, To formats.Month
	// Config has been checked against the schema (and ValidateConfig), with defaults filled
	// in and the SDK's generic keys removed.
	Config map[string]string

	// Log goes to the plugin's stderr, which the agent copies into its own log. Never pass it
	// a patient-level value (keys, dates of a person, free text from a record). Serve and Run
	// set it; it is never nil inside Extract.
	Log hclog.Logger
}
