// Package e2e holds the end-to-end tests: real plugin binaries, every practice's agent and the
// coordinator's combine and query, over a directory store and a real MinIO server, checked
// against totals counted independently from the raw data; revisions; the figures' accuracy
// (BenchmarkFigures); and a federation's first hour on MinIO with the built binaries. It has no
// code of its own.
package e2e
