#!/usr/bin/env bash
# A PostgreSQL server for the tests (the OMOP extractor reads CDM databases).
#
#   bash .ci/postgres.sh start          start a throw-away server on 127.0.0.1; prints an env file to source
#   bash .ci/postgres.sh stop ENVFILE   stop that server and delete its data
#
# It uses Debian's postgresql package (apt-get install postgresql; .ci/run installs it). The
# cluster is made with initdb in a temporary folder, as the postgres user when run as root
# (initdb refuses root), listens on 127.0.0.1 on a free port with password authentication, and
# has a database tributary_test. The env file exports TRIBUTARY_TEST_PG_URL, the URL of that
# database for its superuser (internal/pgtest reads it). start exits 3, printing nothing on
# stdout, when PostgreSQL is not installed.
set -euo pipefail

log() { echo "postgres.sh: $*" >&2; }

random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

# bin_dir prints the folder holding initdb and pg_ctl: Debian keeps them off PATH, under
# /usr/lib/postgresql/<major>/bin.
bin_dir() {
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
	if [[ -n $d && -x $d/initdb ]]; then
		echo "$d"
	elif command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
		dirname "$(command -v initdb)"
	fi
}

# as_owner runs a command as the cluster's owner.
as_owner() {
	if [[ $OWNER == "$(id -un)" ]]; then
		"$@"
	else
		runuser -u "$OWNER" -- "$@"
	fi
}

start() {
	local bin dir pass port attempt
	bin=$(bin_dir)
	if [[ -z $bin ]]; then
		log "PostgreSQL is not installed (apt-get install postgresql)"
		exit 3
	fi
	OWNER=$(id -un)
	if [[ $(id -u) == 0 ]]; then
		OWNER=postgres
		id postgres >/dev/null 2>&1 || OWNER=nobody
	fi
	dir=$(mktemp -d "${TMPDIR:-/tmp}/tributary-pg-ci.XXXXXX")
	chmod 700 "$dir"
	pass=$(random_hex 16)
	printf '%s\n' "$pass" >"$dir/pwfile"
	[[ $OWNER == "$(id -un)" ]] || chown -R "$OWNER" "$dir"
	as_owner "$bin/initdb" -D "$dir/data" -U tributary --pwfile="$dir/pwfile" --auth=scram-sha-256 \
		-E UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1 || {
		log "initdb failed; its log follows"
		cat "$dir/initdb.log" >&2
		rm -rf "$dir"
		exit 1
	}
	rm -f "$dir/pwfile"
	for attempt in 1 2 3 4 5; do
		port=$((20000 + RANDOM % 30000))
		if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
			exec 3<&- 3>&-
			continue # taken
		fi
		if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 -o \
			"-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100" \
			start >/dev/null 2>&1; then
			if ! PGPASSWORD=$pass "$bin/psql" -X -q -h 127.0.0.1 -p "$port" -U tributary -d postgres \
				-c "CREATE DATABASE tributary_test" >/dev/null 2>"$dir/psql.log"; then
				log "cannot create the test database"
				cat "$dir/psql.log" >&2
				as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
				rm -rf "$dir"
				exit 1
			fi
			cat >"$dir/env" <<ENV
export TRIBUTARY_TEST_PG_URL=postgres://tributary:$pass@127.0.0.1:$port/tributary_test?sslmode=disable
export TRIBUTARY_PG_BIN=$bin
export TRIBUTARY_PG_OWNER=$OWNER
export TRIBUTARY_PG_DIR=$dir
ENV
			log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') serving on 127.0.0.1:$port, data in $dir/data"
			echo "$dir/env"
			return
		fi
		log "attempt $attempt: PostgreSQL did not start on port $port"
	done
	log "giving up; the server's log follows"
	tail -n 40 "$dir/postgres.log" >&2 || true
	rm -rf "$dir"
	exit 1
}

stop() {
	local envfile=${1:?usage: postgres.sh stop ENVFILE}
	[[ -f $envfile ]] || { log "no env file $envfile; nothing to stop"; return; }
	local bin dir
	bin=$(sed -n 's/^export TRIBUTARY_PG_BIN=//p' "$envfile")
	OWNER=$(sed -n 's/^export TRIBUTARY_PG_OWNER=//p' "$envfile")
	dir=$(sed -n 's/^export TRIBUTARY_PG_DIR=//p' "$envfile")
	# Only ever a directory start made.
	[[ $dir == */tributary-pg-ci.* ]] || { log "$envfile names no server of this script"; return; }
	if [[ -f $dir/data/postmaster.pid ]]; then
		as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
			as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
}

case ${1:-} in
start) start ;;
stop) stop "${2:-}" ;;
*)
	echo "usage: $0 start | stop ENVFILE" >&2
	exit 2
	;;
esac
