#!/bin/sh
# Memory per open SLA instance (goal: at most 160 bytes above the baseline).
#
# `cargo bench --bench memory` builds the release binary (bench profile) first, writes
# 1,000,000 unanswered customer messages to a temporary file, replays it with
# `sla-timerd replay`, and prints the peak RSS per open instance and the engine's own
# accounting. Set SLA_MEMORY_INSTANCES to change the count.
#
#   scripts/bench-memory.sh                            # 1,000,000 instances
#   SLA_MEMORY_INSTANCES=100000 scripts/bench-memory.sh
set -eu
cd "$(dirname "$0")/.."
exec cargo bench --bench memory "$@"
