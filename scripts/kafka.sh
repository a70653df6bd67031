#!/usr/bin/env bash
# scripts/kafka.sh - a real single-node Apache Kafka 4.x broker (KRaft, no
# ZooKeeper, no Docker) on loopback, for sla-timerd's integration tests.
#
# Usage:
#   scripts/kafka.sh start              fetch jars if needed, format, start, wait
#                                       until a client request succeeds; prints
#                                       KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:19092
#                                       on stdout (idempotent: if already up,
#                                       just prints it)
#   scripts/kafka.sh stop               SIGTERM (then SIGKILL after a grace
#                                       period) and delete the state directory
#   scripts/kafka.sh restart            stop (SIGTERM) and start again on the kept
#                                       state: topics, records, offsets survive
#   scripts/kafka.sh status             "up" (exit 0), "starting" (exit 2) or
#                                       "down" (exit 1)
#   scripts/kafka.sh topics NAME[:PARTITIONS]...
#                                       create topics (--if-not-exists; default
#                                       3 partitions, replication factor 1);
#                                       with no argument, list topics
#   scripts/kafka.sh fetch              only download the broker jars
#   scripts/kafka.sh tools              apt-get install kcat if missing (root +
#                                       apt only; never fails)
#   scripts/kafka.sh run CLASS [ARG...] run any Kafka CLI class with the broker
#                                       class path, e.g.
#                                       run org.apache.kafka.tools.ConsoleProducer --bootstrap-server 127.0.0.1:19092 --topic t
#   scripts/kafka.sh logs [N]           last N (default 100) lines of the broker log
#
#   Typical use:  eval "$(scripts/kafka.sh start)"; export KAFKA_BOOTSTRAP_SERVERS
#
# Needs only Java 17+ and Maven (with Maven Central reachable on the first run).
# Stdout carries only results; progress goes to stderr prefixed "kafka.sh:".
#
# Environment (all optional):
#   KAFKA_PORT               PLAINTEXT listener port on 127.0.0.1   (19092)
#   KAFKA_CONTROLLER_PORT    KRaft CONTROLLER listener port          (19093)
#   SLA_KAFKA_VERSION        org.apache.kafka:kafka_2.13 version     (4.1.2)
#   SLA_KAFKA_HOME           jar cache ($HOME/.cache/sla-timerd/kafka-VERSION)
#   SLA_KAFKA_STATE          pid, config, data and logs  (/tmp/sla-timerd-kafka)
#   SLA_KAFKA_START_TIMEOUT  seconds to wait for the broker to answer   (90)
#   SLA_KAFKA_STOP_TIMEOUT   seconds between SIGTERM and SIGKILL         (30)
#   KAFKA_HEAP_OPTS          broker heap                (-Xms1g -Xmx1g)
#   JAVA_HOME                Java to use (else `java` on PATH)

set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RES_DIR=$SCRIPT_DIR/kafka

KAFKA_VERSION=${SLA_KAFKA_VERSION:-4.1.2}
LOG4J_VERSION=2.25.3
SLF4J_VERSION=2.0.17
DEP_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

KAFKA_PORT=${KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-19093}
BOOTSTRAP=127.0.0.1:$KAFKA_PORT

KAFKA_HOME_DIR=${SLA_KAFKA_HOME:-$HOME/.cache/sla-timerd/kafka-$KAFKA_VERSION}
LIBS=$KAFKA_HOME_DIR/libs
STATE_DIR=${SLA_KAFKA_STATE:-/tmp/sla-timerd-kafka}
STATE_DIR=${STATE_DIR%/}
PID_FILE=$STATE_DIR/kafka.pid
MARKER=$STATE_DIR/.sla-timerd-kafka
START_TIMEOUT=${SLA_KAFKA_START_TIMEOUT:-90}
STOP_TIMEOUT=${SLA_KAFKA_STOP_TIMEOUT:-30}
read -r -a HEAP_OPTS <<<"${KAFKA_HEAP_OPTS:--Xms1g -Xmx1g}"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
}

# ---------------------------------------------------------------- helpers ---

JAVA=
find_java() {
  [[ -n $JAVA ]] && return 0
  if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then
    JAVA=$JAVA_HOME/bin/java
  else
    JAVA=$(command -v java) || die "java not found (need Java 17+; set JAVA_HOME or PATH)"
  fi
  local major
  major=$("$JAVA" -version 2>&1 | sed -n 's/.* version "\([0-9]*\).*/\1/p' | head -n1)
  [[ ${major:-0} -ge 17 ]] || die "Kafka $KAFKA_VERSION needs Java 17+, $JAVA is version ${major:-unknown}"
}

# Serialise start/stop/fetch across concurrent callers (flock is in
# util-linux, present on every Debian; without it we just go ahead).
take_lock() {
  command -v flock >/dev/null 2>&1 || return 0
  local file=$1
  mkdir -p "$(dirname "$file")"
  exec 9>"$file"
  flock -w 300 9 || die "could not lock $file within 300 s"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Java command line for short-lived CLI classes: small heap, fast start-up,
# warnings only on stderr.
tool_java() {
  find_java
  TOOL_CMD=("$JAVA" -Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1
    -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$RES_DIR/tools-log4j2.properties"
    -cp "$LIBS/*")
}

# Admin-client settings so a request to a broker that is not up yet fails in
# seconds instead of the default 60 s.
admin_config() {
  local f=$STATE_DIR/admin.properties
  if [[ ! -d $STATE_DIR ]]; then f=$(mktemp "${TMPDIR:-/tmp}/sla-kafka-admin.XXXXXX"); fi
  cat >"$f" <<EOF
request.timeout.ms=5000
default.api.timeout.ms=10000
socket.connection.setup.timeout.ms=2000
socket.connection.setup.timeout.max.ms=5000
EOF
  printf '%s\n' "$f"
}

# True when the broker answers a real client request (ListTopics via the
# admin client, i.e. what `kafka-topics.sh --list` does).
broker_answers() {
  port_open "$KAFKA_PORT" || return 1
  [[ -f $LIBS/.complete ]] || return 1
  local cfg rc=0
  cfg=$(admin_config)
  tool_java
  timeout 30 "${TOOL_CMD[@]}" org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "$BOOTSTRAP" --command-config "$cfg" --list >/dev/null 2>&1 || rc=$?
  [[ $cfg == "$STATE_DIR/"* ]] || rm -f "$cfg"
  return "$rc"
}

# Prints the pid of the broker this script started, if it is still running.
running_pid() {
  [[ -f $PID_FILE ]] || return 1
  local pid
  pid=$(<"$PID_FILE")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  # Guard against pid reuse: it must be our kafka.Kafka with our config.
  local cmd
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *kafka.Kafka*"$STATE_DIR/server.properties"* ]] || return 1
  printf '%s\n' "$pid"
}

show_log_tail() {
  local n=${1:-60} f
  for f in "$STATE_DIR/logs/server.log" "$STATE_DIR/logs/stdout.log"; do
    if [[ -s $f ]]; then
      log "---- last $n lines of $f ----"
      tail -n "$n" "$f" | sed 's/^/kafka.sh: | /' >&2
    fi
  done
}

wipe_state() {
  [[ -e $STATE_DIR ]] || return 0
  case $STATE_DIR in
    "" | / | "$HOME" | /tmp | /var | /usr | /etc) die "refusing to delete state dir '$STATE_DIR'" ;;
  esac
  if [[ -f $MARKER ]] || [[ -z $(ls -A "$STATE_DIR" 2>/dev/null) ]]; then
    rm -rf -- "$STATE_DIR"
  else
    die "$STATE_DIR exists but was not created by kafka.sh (no $MARKER); not deleting it"
  fi
}

# ------------------------------------------------------------------ fetch ---

fetch_key() {
  printf 'kafka=%s log4j=%s slf4j=%s pom=%s\n' "$KAFKA_VERSION" "$LOG4J_VERSION" \
    "$SLF4J_VERSION" "$(cksum <"$RES_DIR/pom.xml" | cut -d' ' -f1)"
}

libs_ready() {
  [[ -f $LIBS/.complete && -f $LIBS/kafka_2.13-$KAFKA_VERSION.jar ]] &&
    [[ $(<"$LIBS/.complete") == "$(fetch_key)" ]]
}

cmd_fetch() {
  if libs_ready; then
    [[ ${1:-} == --quiet ]] || log "Kafka $KAFKA_VERSION jars cached in $LIBS"
    return 0
  fi
  take_lock "$KAFKA_HOME_DIR.lock"
  if libs_ready; then # someone else fetched while we waited
    log "Kafka $KAFKA_VERSION jars cached in $LIBS"
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found (needed once, to fetch Kafka jars from Maven Central)"
  find_java
  log "fetching Kafka $KAFKA_VERSION broker jars with Maven into $LIBS (first run only)"
  mkdir -p "$KAFKA_HOME_DIR"
  local work t0=$SECONDS
  work=$(mktemp -d "$KAFKA_HOME_DIR/fetch.XXXXXX")
  cp "$RES_DIR/pom.xml" "$work/pom.xml"
  # (sed: Maven 3.8 -q -B still prints bare ANSI resets.)
  if ! (cd "$work" && mvn -B -q -Dstyle.color=never \
    "-Dkafka.version=$KAFKA_VERSION" "-Dlog4j.version=$LOG4J_VERSION" "-Dslf4j.version=$SLF4J_VERSION" \
    "$DEP_PLUGIN:copy-dependencies" -DincludeScope=runtime "-DoutputDirectory=$work/libs" 2>&1 |
    sed -u $'s/\x1b\\[[0-9;]*m//g' | sed '/^$/d') >&2; then
    rm -rf -- "$work"
    die "mvn could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION (is Maven Central reachable?)"
  fi
  local jar
  for jar in "kafka_2.13-$KAFKA_VERSION.jar" "kafka-tools-$KAFKA_VERSION.jar" \
    "kafka-clients-$KAFKA_VERSION.jar" "log4j-core-$LOG4J_VERSION.jar" \
    "log4j-slf4j2-impl-$LOG4J_VERSION.jar" "slf4j-api-$SLF4J_VERSION.jar"; do
    [[ -f $work/libs/$jar ]] || { rm -rf -- "$work"; die "fetched class path lacks $jar"; }
  done
  fetch_key >"$work/libs/.complete"
  rm -rf -- "$LIBS"
  mv "$work/libs" "$LIBS"
  rm -rf -- "$work"
  log "fetched $(find "$LIBS" -name '*.jar' | wc -l) jars ($(du -sh "$LIBS" | cut -f1)) in $((SECONDS - t0)) s"
}

# ------------------------------------------------------------------ start ---

# The broker logs "Kafka Server started" once it serves clients; until then
# only that cheap grep runs (a client JVM per poll would steal CPU from the
# starting broker on a 2-core machine).  The real readiness test is still a
# client request; after 20 s it is tried regardless of the log.
broker_logged_started() {
  grep -qs 'Kafka Server started' "$STATE_DIR/logs/server.log"
}

wait_ready() {
  local pid=$1 t0=$SECONDS deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "broker process $pid exited during start-up"
      show_log_tail 80
      return 1
    fi
    if { broker_logged_started || ((SECONDS - t0 >= 20)); } && broker_answers; then return 0; fi
    if ((SECONDS >= deadline)); then
      log "broker did not answer on $BOOTSTRAP within ${START_TIMEOUT} s"
      show_log_tail 80
      return 1
    fi
    sleep 0.25
  done
}

# A Kafka Uuid string: 16 random bytes, URL-safe base64 without padding, not
# starting with '-' (what `StorageTool random-uuid` prints).  Done in the
# shell because that JVM costs ~1.5 s per start; StorageTool is the fallback.
new_cluster_id() {
  local id
  if command -v base64 >/dev/null 2>&1; then
    for _ in 1 2 3 4 5 6 7 8; do
      id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
      if [[ $id =~ ^[A-Za-z0-9_][A-Za-z0-9_-]{21}$ && $id != AAAAAAAAAAAAAAAAAAAAA[AQ] ]]; then
        printf '%s\n' "$id"
        return 0
      fi
    done
  fi
  "${TOOL_CMD[@]}" kafka.tools.StorageTool random-uuid
}

render_config() {
  sed -e "s|@PORT@|$KAFKA_PORT|g" \
    -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
    -e "s|@DATA_DIR@|$STATE_DIR/data|g" \
    "$RES_DIR/server.properties.in" >"$STATE_DIR/server.properties"
}

# Starts the broker on the formatted state in $STATE_DIR and waits until it
# answers; returns non-zero (broker killed) when it does not.
launch() {
  local pid
  log "starting Kafka $KAFKA_VERSION (KRaft broker+controller) on $BOOTSTRAP, controller 127.0.0.1:$KAFKA_CONTROLLER_PORT, state in $STATE_DIR"
  local launcher=()
  command -v setsid >/dev/null 2>&1 && launcher=(setsid)
  # setsid: own session, so Ctrl-C / a test runner killing the caller's
  # process group does not take the broker down half-way; all fds redirected
  # so `$(kafka.sh start)` returns, and the lock fd 9 closed so the broker
  # does not hold the start/stop lock for its whole life.
  nohup "${launcher[@]}" "$JAVA" "${HEAP_OPTS[@]}" \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true \
    "-Dkafka.logs.dir=$STATE_DIR/logs" \
    "-Dlog4j2.configurationFile=$RES_DIR/log4j2.properties" \
    -cp "$LIBS/*" kafka.Kafka "$STATE_DIR/server.properties" \
    </dev/null >"$STATE_DIR/logs/stdout.log" 2>&1 9>&- &
  pid=$!
  disown "$pid" 2>/dev/null || true # no "Killed" job notices from bash
  printf '%s\n' "$pid" >"$PID_FILE"

  if ! wait_ready "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$PID_FILE"
    return 1
  fi
}

cmd_start() {
  [[ $KAFKA_PORT =~ ^[0-9]+$ && $KAFKA_CONTROLLER_PORT =~ ^[0-9]+$ ]] ||
    die "KAFKA_PORT / KAFKA_CONTROLLER_PORT must be numbers"
  cmd_fetch
  find_java
  take_lock "$STATE_DIR.lock"

  local pid t0=$SECONDS
  if pid=$(running_pid); then
    log "broker already running (pid $pid); checking it answers on $BOOTSTRAP"
    wait_ready "$pid" || die "running broker (pid $pid) does not answer; try: $0 stop && $0 start"
    log "broker up (pid $pid)"
    echo "KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP"
    return 0
  fi

  if port_open "$KAFKA_PORT" || port_open "$KAFKA_CONTROLLER_PORT"; then
    if broker_answers; then
      log "warning: a Kafka broker not started by this script already answers on $BOOTSTRAP; using it (stop will not touch it)"
      echo "KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP"
      return 0
    fi
    die "127.0.0.1:$KAFKA_PORT or :$KAFKA_CONTROLLER_PORT is taken by something else; set KAFKA_PORT / KAFKA_CONTROLLER_PORT"
  fi

  # Fresh, throw-away state every time (a leftover dir from a crash is wiped).
  wipe_state
  mkdir -p "$STATE_DIR/data" "$STATE_DIR/logs"
  : >"$MARKER"
  render_config

  tool_java
  local cluster_id
  cluster_id=$(new_cluster_id) || die "could not make a cluster id"
  printf '%s\n' "$cluster_id" >"$STATE_DIR/cluster.id"
  # Static controller.quorum.voters in server.properties => no --standalone.
  "${TOOL_CMD[@]}" kafka.tools.StorageTool format -t "$cluster_id" \
    -c "$STATE_DIR/server.properties" >"$STATE_DIR/logs/format.log" 2>&1 ||
    { cat "$STATE_DIR/logs/format.log" >&2; die "StorageTool format failed"; }

  launch || die "Kafka failed to start (logs kept in $STATE_DIR/logs)"
  log "broker up (pid $(<"$PID_FILE")) after $((SECONDS - t0)) s"
  echo "KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP"
}

# ------------------------------------------------------------------- stop ---

# SIGTERM the broker (SIGKILL after the grace period); keeps its state.
halt() {
  local pid
  if pid=$(running_pid); then
    log "stopping broker (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      log "still running after ${STOP_TIMEOUT} s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -f "$PID_FILE"
  else
    log "no broker started by kafka.sh is running"
  fi
}

cmd_stop() {
  take_lock "$STATE_DIR.lock"
  halt
  wipe_state
  log "stopped; removed $STATE_DIR"
}

# Stop and start again on the same data: topics, records, committed offsets and
# transactions survive (what a broker upgrade or a crash-restart looks like).
cmd_restart() {
  take_lock "$STATE_DIR.lock"
  [[ -f $MARKER && -f $STATE_DIR/server.properties ]] ||
    die "no broker state in $STATE_DIR to restart on; use: $0 start"
  local t0=$SECONDS
  halt
  # A new log, so the start-up wait does not read the last run's "started" line.
  local f
  for f in server.log stdout.log; do
    [[ -f $STATE_DIR/logs/$f ]] && mv -f "$STATE_DIR/logs/$f" "$STATE_DIR/logs/$f.previous"
  done
  find_java
  launch || die "Kafka failed to restart (logs kept in $STATE_DIR/logs)"
  log "broker restarted on its kept state after $((SECONDS - t0)) s"
  echo "KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP"
}

# ----------------------------------------------------------------- status ---

cmd_status() {
  local pid
  if pid=$(running_pid); then
    if broker_answers; then
      echo "up pid=$pid KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP"
      return 0
    fi
    echo "starting pid=$pid (not answering on $BOOTSTRAP yet)"
    return 2
  fi
  if broker_answers; then
    echo "up (not started by kafka.sh) KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP"
    return 0
  fi
  echo "down"
  return 1
}

# ----------------------------------------------------------------- topics ---

cmd_topics() {
  libs_ready || die "Kafka jars not fetched yet; run: $0 start"
  port_open "$KAFKA_PORT" || die "nothing listens on $BOOTSTRAP; run: $0 start"
  tool_java
  local cfg
  cfg=$(admin_config)
  # shellcheck disable=SC2064 # expand now: cfg is local
  [[ $cfg == "$STATE_DIR/"* ]] || trap "rm -f -- '$cfg'" EXIT
  if (($# == 0)); then
    "${TOOL_CMD[@]}" org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" \
      --command-config "$cfg" --list
    return
  fi
  local spec name parts
  for spec in "$@"; do
    name=${spec%%:*}
    parts=3
    [[ $spec == *:* ]] && parts=${spec#*:}
    [[ $name =~ ^[A-Za-z0-9._-]{1,249}$ ]] || die "bad topic name in '$spec'"
    [[ $parts =~ ^[1-9][0-9]*$ ]] || die "bad partition count in '$spec' (want NAME:PARTITIONS)"
    "${TOOL_CMD[@]}" org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" \
      --command-config "$cfg" --create --if-not-exists \
      --topic "$name" --partitions "$parts" --replication-factor 1 >&2 ||
      die "could not create topic $name (is the broker up? $0 status)"
    log "topic $name ($parts partitions) present"
  done
}

# ------------------------------------------------------------------ tools ---

cmd_tools() {
  if command -v kcat >/dev/null 2>&1; then
    log "kcat already installed: $(command -v kcat)"
    return 0
  fi
  if [[ $(id -u) -ne 0 ]]; then
    log "kcat missing and not root; skipping (the Java console tools work too: $0 run ...)"
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    log "kcat missing and apt-get unavailable; skipping"
    return 0
  fi
  log "installing kcat with apt-get"
  local out
  out=$(mktemp "${TMPDIR:-/tmp}/sla-kafka-apt.XXXXXX")
  if { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kcat; } >"$out" 2>&1; then
    log "kcat installed: $(command -v kcat)"
  else
    tail -n 20 "$out" | sed 's/^/kafka.sh: | /' >&2
    log "warning: apt-get install kcat failed; continuing without it"
  fi
  rm -f "$out"
  return 0
}

# -------------------------------------------------------------------- run ---

cmd_run() {
  (($# >= 1)) || die "usage: $0 run CLASS [ARG...]"
  cmd_fetch --quiet
  tool_java
  exec "${TOOL_CMD[@]}" "$@"
}

cmd_logs() {
  local n=${1:-100}
  [[ -f $STATE_DIR/logs/server.log ]] || die "no broker log in $STATE_DIR/logs"
  tail -n "$n" "$STATE_DIR/logs/server.log"
}

# ------------------------------------------------------------------- main ---

main() {
  local cmd=${1:-}
  (($# > 0)) && shift
  case $cmd in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    restart) cmd_restart "$@" ;;
    status) cmd_status "$@" ;;
    topics) cmd_topics "$@" ;;
    fetch) cmd_fetch "$@" ;;
    tools) cmd_tools "$@" ;;
    run) cmd_run "$@" ;;
    logs) cmd_logs "$@" ;;
    -h | --help | help) usage ;;
    *)
      usage
      [[ -z $cmd ]] && die "missing command"
      die "unknown command '$cmd'"
      ;;
  esac
}

main "$@"
