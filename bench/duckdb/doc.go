// Package duckdb holds the tests and benchmarks that run DuckDB (through
// github.com/duckdb/duckdb-go, cgo) against Tributary's outputs. It is its own module, so
// the main module, its binaries and its CI steps never link DuckDB; .ci/test runs its tests
// beside the main module's.
package duckdb
