// Package agent is the practice service: it runs the extractor plugins over the practice's
// own data, aggregates their rows into monthly measures, applies disclosure control, writes
// and signs the files in the spool, and uploads them to the federation's store.
package agent
