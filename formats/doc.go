// Package formats is the contract between the practice agent and the federation coordinator:
// the Arrow schemas of plugin rows and of submissions, the signed run manifest, the object key
// layout, and the validation that turns bad bytes into errors a person can act on.
//
// Nothing in this package reads or writes the network or the object store; it works on values
// and byte slices, so both sides (and the fuzzers) use exactly the same code.
package formats

// FormatVersion is the version of the on-disk contract written into every file's schema
// metadata and every manifest. A reader refuses any other version with ErrFormatVersion.
//
// Version 2 publishes margins: one file per run holding every period of the run (months,
// and the calendar quarters and years it covers), each with its fine cells, band and sex
// margins and total, each value through the disclosure policy on its own.
const FormatVersion = 2

// RegistryVersion is the version of the signed federation registry, which did not change
// with format 2.
const RegistryVersion = 1
