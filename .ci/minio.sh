#!/usr/bin/env bash
# A MinIO server for the tests.
#
#   bash .ci/minio.sh install        build the pinned server once into the user's cache; prints its path
#   bash .ci/minio.sh start          start a throw-away server on 127.0.0.1; prints an env file to source
#   bash .ci/minio.sh stop ENVFILE   stop that server and delete its data
#
# The env file exports TRIBUTARY_TEST_S3_ENDPOINT, _ACCESS_KEY and _SECRET_KEY (which
# internal/miniotest.Shared uses) and TRIBUTARY_MINIO_BIN (which miniotest.Start uses).
set -euo pipefail

# Keep in step with internal/miniotest.Version.
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
BIN_DIR=${TRIBUTARY_CACHE_DIR:-$HOME/.cache/tributary}/minio-$MINIO_VERSION
BIN=$BIN_DIR/minio

log() { echo "minio.sh: $*" >&2; }

random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

install() {
	if [[ -x $BIN ]]; then
		echo "$BIN"
		return
	fi
	log "building MinIO $MINIO_VERSION into $BIN_DIR (several minutes the first time)"
	mkdir -p "$BIN_DIR"
	# Outside the repo, so its go.mod plays no part.
	(cd "$BIN_DIR" && GOBIN=$BIN_DIR GOFLAGS=-buildvcs=false go install "github.com/minio/minio@$MINIO_VERSION") >&2
	echo "$BIN"
}

# http_status HOST PORT PATH prints the HTTP status of a GET, or nothing if no one answers.
http_status() {
	local status=""
	if { exec 3<>"/dev/tcp/$1/$2"; } 2>/dev/null; then
		printf 'GET %s HTTP/1.0\r\nHost: %s:%s\r\n\r\n' "$3" "$1" "$2" >&3
		read -r -t 5 _ status _ <&3 || true
		exec 3<&- 3>&-
	fi
	echo "$status"
}

# wait_ready PORT PID waits until the S3 API answers (anonymous requests get 403), or the
# server exits, or 60 s pass.
wait_ready() {
	local i
	for ((i = 0; i < 600; i++)); do
		kill -0 "$2" 2>/dev/null || return 1
		if [[ $(http_status 127.0.0.1 "$1" /minio/health/live) == 200 &&
			$(http_status 127.0.0.1 "$1" /minio/health/ready) == 200 &&
			$(http_status 127.0.0.1 "$1" /) == 403 ]]; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

start() {
	local bin dir user pass port pid attempt
	bin=$(install)
	dir=$(mktemp -d "${TMPDIR:-/tmp}/tributary-minio-ci.XXXXXX")
	user=ci-$(random_hex 6)
	pass=$(random_hex 20)
	for attempt in 1 2 3 4 5; do
		port=$((20000 + RANDOM % 30000))
		[[ -n $(http_status 127.0.0.1 "$port" /) ]] && continue # taken
		MINIO_ROOT_USER=$user MINIO_ROOT_PASSWORD=$pass MINIO_BROWSER=off MINIO_UPDATE=off MINIO_CI_CD=on \
			setsid "$bin" server --quiet --address "127.0.0.1:$port" "$dir/data" \
			>"$dir/minio.log" 2>&1 </dev/null &
		pid=$!
		if wait_ready "$port" "$pid"; then
			cat >"$dir/env" <<ENV
export TRIBUTARY_TEST_S3_ENDPOINT=127.0.0.1:$port
export TRIBUTARY_TEST_S3_ACCESS_KEY=$user
export TRIBUTARY_TEST_S3_SECRET_KEY=$pass
export TRIBUTARY_MINIO_BIN=$bin
export TRIBUTARY_MINIO_PID=$pid
export TRIBUTARY_MINIO_DIR=$dir
ENV
			log "MinIO (pid $pid) serving on 127.0.0.1:$port, data in $dir/data"
			echo "$dir/env"
			return
		fi
		log "attempt $attempt: MinIO did not become ready on port $port"
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	log "giving up; the server's log follows"
	tail -n 40 "$dir/minio.log" >&2 || true
	rm -rf "$dir"
	exit 1
}

stop() {
	local envfile=${1:?usage: minio.sh stop ENVFILE}
	[[ -f $envfile ]] || { log "no env file $envfile; nothing to stop"; return; }
	local pid dir i
	pid=$(sed -n 's/^export TRIBUTARY_MINIO_PID=//p' "$envfile")
	dir=$(sed -n 's/^export TRIBUTARY_MINIO_DIR=//p' "$envfile")
	if [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null; then
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	# Only ever a directory start made.
	if [[ $dir == */tributary-minio-ci.* ]]; then
		rm -rf "$dir"
	fi
}

case ${1:-} in
install) install ;;
start) start ;;
stop) stop "${2:-}" ;;
*)
	echo "usage: $0 install | start | stop ENVFILE" >&2
	exit 2
	;;
esac
