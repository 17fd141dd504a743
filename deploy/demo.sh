#!/usr/bin/env bash
# The whole federation flow on one machine, with no server to install: builds Tributary,
# generates a synthetic federation, runs every practice's agent against a local store,
# combines, prints the federation's figures, then serves the dashboard on 127.0.0.1.
#
#   bash deploy/demo.sh [WORKDIR] [tributary-demo flags, e.g. --practices DIR --from 2022-01 --to 2023-12]
#
# TRIBUTARY_DEMO_SERVE=0 skips the dashboard; TRIBUTARY_DEMO_LISTEN changes its address.
# At a terminal a progress bar on stderr follows the agents and the combine; NO_PROGRESS=1 (or
# --no-progress) turns it off, and piped output never has one.
set -euo pipefail
# Paths given on the command line are the caller's: make them absolute before moving to the
# repository root.
abs() { case $1 in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "$1" ;; esac; }
workdir=.tributary-demo
if [[ $# -gt 0 && $1 != --* ]]; then
	workdir=$(abs "$1")
	shift
fi
args=()
while (($# > 0)); do
	case $1 in
	--practices | --workdir)
		if (($# < 2)); then
			args+=("$1") # tributary-demo says what is missing
			shift
			continue
		fi
		args+=("$1" "$(abs "$2")")
		shift 2
		;;
	--practices=* | --workdir=*)
		args+=("${1%%=*}=$(abs "${1#*=}")")
		shift
		;;
	*)
		args+=("$1")
		shift
		;;
	esac
done
set -- "${args[@]+"${args[@]}"}"
cd "$(dirname "$0")/.."
listen=${TRIBUTARY_DEMO_LISTEN:-127.0.0.1:8080}
mkdir -p bin
echo "building tributary-agent, tributary-coordinator, tributary-demo and the extractor plugins into ./bin ..."
plugins="./plugins/synthea ./plugins/omop ./plugins/ukgp"
if [[ -f plugins/fhir/main.go ]]; then plugins="$plugins ./plugins/fhir"; fi
go build -o bin/ ./agent/cmd/tributary-agent ./coordinator/cmd/tributary-coordinator ./demo/cmd/tributary-demo $plugins
bin/tributary-demo --workdir "$workdir" --plugin-dir bin "$@"

if [[ ${TRIBUTARY_DEMO_SERVE:-1} == 0 ]]; then
	exit 0
fi
tokens=$workdir/coordinator/tokens.json
token=$(bin/tributary-coordinator tokens add --file "$tokens" --name "demo federation lead" --role lead | grep -o 'trib_[0-9a-f]*' | head -n 1)
cat <<MSG

The dashboard: open http://$listen/ and sign in with this federation-lead token:

    $token

(Ctrl-C stops the server; the figures stay in $workdir/store.)
MSG
exec bin/tributary-coordinator serve --store "file://$(cd "$workdir" && pwd)/store" \
	--key "$workdir/coordinator/coordinator.key" --tokens "$tokens" --listen "$listen"
