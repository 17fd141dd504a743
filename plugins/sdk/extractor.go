// Package sdk is what an extractor plugin imports: a small Extractor interface, a Writer that
// builds the contract's Arrow batches for the author, and Serve, which hides go-plugin.
package sdk

import (
	"context"

	"github.com/hashicorp/go-hclog"

	"github.com/tributary-health/tributary/formats"
)

// Extractor reads a practice's own clinical data and emits canonical rows. It is all a plugin
// author implements; Serve does the rest.
//
// Describe must be cheap and must not touch the data. Extract emits every registration and
// event that touches the requested months through w and returns nil; any error it returns
// (or a panic) fails the run with that error. It must return promptly once ctx is done.
type Extractor interface {
	Describe() Description
	Extract(ctx context.Context, req Request, w *Writer) error
}

// ConfigValidator is optional: an Extractor that implements it has its configuration checked
// before any Extract, and its error is shown to the practice manager as it is.
type ConfigValidator interface {
	ValidateConfig(config map[string]string) error
}

// Description says what an extractor is and what it can supply.
type Description struct {
	Name       string      // lower-case, e.g. "synthea"
	Version    string      // semantic version of the extractor
	RowKinds   []string    // formats.RowRegistrations and/or formats.RowEvents
	EventKinds []string    // which formats.Kind* values it can emit
	Methods    bool        // whether it can tell emergency from elective admissions
	Config     []ConfigKey // the keys of its configuration
}

// ConfigKey documents one configuration key.
type ConfigKey struct {
	Name     string
	Help     string
	Required bool
	Default  string
}

// Request is one extraction: every row touching the months From..To inclusive.
type Request struct {
	From, To formats.Month
	Config   map[string]string

	// Log goes to the plugin's stderr, which the agent copies into its own log. Never pass it
	// a patient-level value (keys, dates of a person, free text from a record). Serve and Run
	// set it; it is never nil inside Extract.
	Log hclog.Logger
}
