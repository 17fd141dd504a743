#!/bin/sh
# Sets up a trial federation (deploy/compose.yaml) in /var/lib/tributary: the coordinator's
# key, one key pair and agent configuration per practice named on the command line, the
# signed registry in the store, and an API token for the dashboard. Safe to run again: what
# exists is kept. Usage: tributary-trial-setup PRACTICE_ID...
set -eu
home=/var/lib/tributary
plugin=/usr/lib/tributary/plugins/synthea
: "${TRIBUTARY_STORE:?set TRIBUTARY_STORE to the federation's store}"

if [ ! -f "$home/coordinator/coordinator.key" ]; then
	tributary-coordinator keys init --out "$home/coordinator"
fi
sum=$(sha256sum "$plugin" | cut -d' ' -f1)
for id in "$@"; do
	dir=$home/$id
	if [ ! -f "$dir/practice.key" ]; then
		tributary-agent keys init --out "$dir"
		tributary-coordinator registry add --key "$home/coordinator/coordinator.key" \
			--practice "$id" --name "Trial practice $id" --public-key "$dir/practice.pub"
	fi
	cat >"$dir/agent.toml" <<TOML
# Written by tributary-trial-setup for the trial federation; see deploy/examples/agent.toml
# for every setting explained.
practice = "$id"
key_file = "$dir/practice.key"
store = "$TRIBUTARY_STORE"
spool = "$dir/spool"
schedule = "*/10 * * * *"   # every 10 minutes, so a trial shows results soon
jitter = "1m"
listen = "127.0.0.1:9464"
[months]
recent = 24
[[plugins]]
name = "synthea"
path = "$plugin"
sha256 = "$sum"
  [plugins.config]
  dir = "/data/csv"
TOML
	tributary-agent config check --config "$dir/agent.toml"
done
if [ ! -f "$home/coordinator/tokens.json" ]; then
	echo "API token for the dashboard (shown once):"
	tributary-coordinator tokens add --file "$home/coordinator/tokens.json" --name "trial lead" --role lead
fi
