#!/usr/bin/env bash
# scripts/api-check.sh - the query API (contract section 12) tested against its own
# OpenAPI document with schemathesis, on a running daemon and a real broker.
#
# Installs schemathesis from PyPI into a virtual environment under ~/.cache (once),
# creates fresh topics on $KAFKA_BOOTSTRAP_SERVERS, writes a small backlog (messages,
# orders, a return), starts target/debug/sla-timerd with an API token, waits for
# /readyz, fetches /v1/openapi.json with the token and runs `schemathesis run` on it
# with every check, then stops the daemon. Exits non-zero when anything fails,
# PyPI being unreachable included.
#
# Environment: KAFKA_BOOTSTRAP_SERVERS (required), SLA_API_CHECK_EXAMPLES (examples per
# operation, default 40), SLA_API_CHECK_VENV (the virtual environment).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "api-check.sh: $*" >&2; }
: "${KAFKA_BOOTSTRAP_SERVERS:?set KAFKA_BOOTSTRAP_SERVERS (eval \"\$(scripts/kafka.sh start)\")}"

# What a fresh Debian machine may lack: curl, and Python's venv module.
apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing $* with apt-get"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    log "$* missing; install it"; return 1
  fi
}
command -v curl >/dev/null 2>&1 || apt_install curl
python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv

VENV=${SLA_API_CHECK_VENV:-$HOME/.cache/sla-timerd-api-check}
if [ ! -x "$VENV/bin/schemathesis" ]; then
  log "installing schemathesis into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV" || { log "cannot create a virtual environment (is python3-venv installed?)"; exit 1; }
  "$VENV/bin/pip" install --quiet 'schemathesis>=4,<5' \
    || { log "cannot install schemathesis from PyPI; the API check cannot run"; exit 1; }
fi
log "$("$VENV/bin/schemathesis" --version)"

BIN=target/debug/sla-timerd
[ -x "$BIN" ] || cargo build --locked --bin sla-timerd

work=$(mktemp -d)
prefix="api-check-$$-$(date +%s)"
token="api-check-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
daemon=
cleanup() {
  if [ -n "$daemon" ] && kill -0 "$daemon" 2>/dev/null; then
    kill -TERM "$daemon"; wait "$daemon" || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

scripts/kafka.sh topics "$prefix-customer-message:2" "$prefix-return-request:1" \
  "$prefix-shipment:2" "$prefix-alerts:1" "$prefix-dead-letter:1" >/dev/null

# A backlog with open, overdue and already-warned instances: times relative to now.
at() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ; }
{
  for i in 1 2 3 4 5 6; do
    printf 'T-%s\t{"specversion":"1.0","id":"m-%s","source":"helpdesk","type":"customer_message.received","time":"%s","data":{"thread_id":"T-%s","seller_id":"S%s","marketplace":"NL"}}\n' \
      "$i" "$i" "$(at "-$((i * 5)) hours")" "$i" "$((i % 2))"
  done
} > "$work/messages"
{
  printf 'O-1\t{"specversion":"1.0","id":"o-1","source":"shop","type":"order.placed","time":"%s","data":{"order_id":"O-1","latest_ship_date":"%s","latest_delivery_date":"%s","seller_id":"S1","marketplace":"DE"}}\n' \
    "$(at '-3 hours')" "$(at '-1 hour')" "$(at '+3 days')"
  printf 'O-2\t{"specversion":"1.0","id":"o-2","source":"shop","type":"order.placed","time":"%s","data":{"order_id":"O-2","latest_ship_date":"%s"}}\n' \
    "$(at '-10 minutes')" "$(at '+2 hours')"
} > "$work/orders"
printf 'R-1\t{"specversion":"1.0","id":"r-1","source":"returns","type":"return.requested","time":"%s","data":{"return_id":"R-1","order_id":"O-9"}}\n' \
  "$(at '-1 hour')" > "$work/returns"
produce() {
  scripts/kafka.sh run org.apache.kafka.tools.ConsoleProducer --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" \
    --topic "$1" --property parse.key=true --property 'key.separator=	' < "$2" >/dev/null
}
produce "$prefix-customer-message" "$work/messages"
produce "$prefix-shipment" "$work/orders"
produce "$prefix-return-request" "$work/returns"

export SLA_TIMERD__KAFKA__BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS
export SLA_TIMERD__KAFKA__GROUP_ID=$prefix-group
export SLA_TIMERD__KAFKA__TOPICS__CUSTOMER_MESSAGE=$prefix-customer-message
export SLA_TIMERD__KAFKA__TOPICS__RETURN_REQUEST=$prefix-return-request
export SLA_TIMERD__KAFKA__TOPICS__SHIPMENT=$prefix-shipment
export SLA_TIMERD__KAFKA__TOPICS__ALERTS=$prefix-alerts
export SLA_TIMERD__KAFKA__TOPICS__DEAD_LETTER=$prefix-dead-letter
export SLA_TIMERD__KAFKA__WORKERS=2
export SLA_TIMERD__HTTP__LISTEN=127.0.0.1:$port
export SLA_TIMERD__HTTP__API_TOKEN=$token
"$BIN" run > "$work/daemon.log" 2>&1 &
daemon=$!
base=http://127.0.0.1:$port
for _ in $(seq 120); do
  curl -fsS "$base/readyz" >/dev/null 2>&1 && break
  kill -0 "$daemon" 2>/dev/null || { cat "$work/daemon.log" >&2; log "the daemon stopped"; exit 1; }
  sleep 0.5
done
curl -fsS "$base/readyz" >/dev/null || { tail -20 "$work/daemon.log" >&2; log "the daemon never became ready"; exit 1; }
for _ in $(seq 60); do
  open=$(curl -fsS -H "Authorization: Bearer $token" "$base/v1/deadlines" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["deadlines"]))')
  [ "$open" -ge 10 ] && break
  sleep 0.5
done
log "daemon ready on $base with $open open deadlines"

curl -fsS -H "Authorization: Bearer $token" "$base/v1/openapi.json" > "$work/openapi.json"
# Every check but positive_data_acceptance: `after` is an opaque cursor, and no schema can
# tell the strings that are cursors from those that are not (a made-up one is a 400).
# Run in the scratch directory: schemathesis keeps a cache in .schemathesis/ where it runs.
(cd "$work" && "$VENV/bin/schemathesis" run "$work/openapi.json" --url "$base" \
  -H "Authorization: Bearer $token" \
  --checks all --exclude-checks positive_data_acceptance \
  --max-examples "${SLA_API_CHECK_EXAMPLES:-40}" \
  --seed 1 \
  --no-color)
log "schemathesis passed"
