#!/usr/bin/env bash
# The whole federation flow on one machine, with no server: builds Tributary, generates a
# synthetic federation, runs every practice's agent against a local store, combines, and
# prints the federation's figures. Usage: bash deploy/demo.sh [WORKDIR] [extra demo flags]
set -euo pipefail
cd "$(dirname "$0")/.."
workdir=${1:-.tributary-demo}
shift || true
mkdir -p bin
echo "building tributary-agent, tributary-coordinator and the synthea plugin into ./bin ..."
go build -o bin/ ./agent/cmd/tributary-agent ./coordinator/cmd/tributary-coordinator ./plugins/synthea
exec bin/tributary-coordinator demo --workdir "$workdir" --plugin bin/synthea "$@"
