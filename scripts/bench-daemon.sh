#!/bin/sh
# The live daemon end to end on a real Kafka broker: consumption rate against a bare
# consumer (goal: at least 0.70 of it) and breach firing lateness once caught up (goal:
# p99 under 10 ms, none early). See benches/daemon.rs for what is measured.
#
# Uses the broker in KAFKA_BOOTSTRAP_SERVERS; when that is unset, starts one with
# scripts/kafka.sh and stops it afterwards (a broker it did not start is left running).
# SLA_BENCH_RECORDS sets the record count (default 1,000,000), SLA_BENCH_OPEN_INSTANCES
# the open instances of the restart (default 1,000,000), SLA_BENCH_PARTS the parts to run
# (throughput,lateness,restart; default all).
#
#   scripts/bench-daemon.sh
#   SLA_BENCH_RECORDS=300000 scripts/bench-daemon.sh
set -eu
cd "$(dirname "$0")/.."
if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  # A broker already up (someone else's) is used and left running.
  if ! scripts/kafka.sh status >/dev/null 2>&1; then
    trap 'scripts/kafka.sh stop' EXIT
    trap 'exit 130' INT TERM
  fi
  eval "$(scripts/kafka.sh start)"
  export KAFKA_BOOTSTRAP_SERVERS
fi
# The broker's CPU time is reported beside the daemon's when the broker is local.
pid_file=${SLA_KAFKA_STATE:-/tmp/sla-timerd-kafka}/kafka.pid
if [ -z "${SLA_BENCH_BROKER_PID:-}" ] && [ -r "$pid_file" ]; then
  SLA_BENCH_BROKER_PID=$(cat "$pid_file")
  export SLA_BENCH_BROKER_PID
fi
cargo bench --bench daemon "$@"
