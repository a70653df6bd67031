#!/usr/bin/env bash
# The whole test suite, as the README gives it and CI (.ci/run) runs it.
#
# Installs what it needs on a fresh machine (a Rust toolchain through rustup when cargo
# is missing), then: unit tests, the integration-test binary (spec examples, the
# engine against its reference model), and a compile of every bench.
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

log "cargo $(cargo --version | cut -d' ' -f2): unit and integration tests"
cargo test --locked

log "benches compile"
cargo bench --locked --no-run

log "all tests passed"
