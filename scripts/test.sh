#!/usr/bin/env bash
# The whole test suite, as the README gives it and CI (.ci/run) runs it.
#
# Installs what it needs on a fresh machine (a Rust toolchain through rustup when cargo
# is missing; Debian's C build tools and OpenSSL headers for librdkafka, and chromium
# for the HTML report test; the Apache Kafka broker jars through Maven), starts a single-node Kafka
# broker on loopback (scripts/kafka.sh) unless KAFKA_BOOTSTRAP_SERVERS points at one,
# then runs: unit tests, the integration-test binary (spec examples, the engine against
# its reference model, the live daemon against the broker), the query API against its
# OpenAPI document (scripts/api-check.sh, schemathesis from PyPI), and a compile of every
# bench.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "test.sh: $*" >&2; }

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    log "installing the Rust toolchain with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
apt_install() {
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# librdkafka is built from source by rdkafka-sys: a C compiler, make, and OpenSSL's
# headers found through pkg-config.
if ! command -v cc >/dev/null 2>&1 || ! command -v make >/dev/null 2>&1 \
  || ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists openssl 2>/dev/null; then
  log "installing Debian's build tools and OpenSSL headers for librdkafka"
  apt_install build-essential pkg-config libssl-dev
fi

if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  # The HTML report is tested in a real headless browser (tests/it/report_cli.rs).
  log "installing Debian's chromium for the HTML report test"
  apt_install chromium
fi

log "formatting and lints"
if rustup component list --installed 2>/dev/null | grep -q rustfmt || command -v rustfmt >/dev/null 2>&1; then
  cargo fmt --check
else
  log "rustfmt is not installed; installing it"
  rustup component add rustfmt clippy
  cargo fmt --check
fi
cargo clippy --locked --all-targets -- -D warnings

log "building"
cargo build --locked --all-targets

if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  log "starting a Kafka broker for the integration tests"
  trap 'scripts/kafka.sh stop >/dev/null 2>&1 || true' EXIT
  eval "$(scripts/kafka.sh start)"
fi
export KAFKA_BOOTSTRAP_SERVERS
export SLA_REQUIRE_KAFKA=1

log "cargo $(cargo --version | cut -d' ' -f2): unit and integration tests against $KAFKA_BOOTSTRAP_SERVERS"
cargo test --locked

log "the query API against its OpenAPI document (schemathesis, on the broker)"
scripts/api-check.sh

log "deploy assets"
scripts/check-deploy.sh

log "benches compile"
cargo bench --locked --no-run

log "all tests passed"
