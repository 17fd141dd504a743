// Package agent is the practice service: it runs the extractor plugins over the practice's
// own data, aggregates their rows into monthly measures, applies disclosure control, writes
// and signs the files in the spool, and uploads them to the federation's store.
//
// Agent.RunOnce is one run. agent/service runs it on the configured schedule with an outbox
// that retries uploads for as long as the store is down, a local /healthz and /metrics
// endpoint and a state file, and installs the agent as a systemd unit or a Windows service;
// agent/status turns the state file, the spool and the release log into plain words for
// 'tributary-agent status'.
package agent
