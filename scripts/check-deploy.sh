#!/usr/bin/env bash
# Checks the deploy assets (deploy/), each with the tool made for it:
#
#   Helm chart         helm lint --strict; helm template (StatefulSet, Deployment, every
#                      option on) | kubeconform -strict against Kubernetes' own schemas;
#                      the Prometheus Operator objects against their CRD schemas; and
#                      deploy/checks/chart.py: probes, grace period, identity, secrets,
#                      hardening as the daemon needs them
#   alert rules        promtool check rules, promtool test rules (unit tests)
#   dashboard, rules   deploy/checks/metrics.py: every query names metrics that
#                      src/metrics.rs exports; deploy/checks/promql.py: every query
#                      evaluated by a Prometheus server (scraping `sla-timerd run`
#                      when a broker is at hand)
#   docker-compose.yml compose-go, the loader of Docker Compose v2 (and `docker compose
#                      config` as well where that client is installed)
#   systemd unit       systemd-analyze verify, systemd-analyze security (exposure)
#   settings           the SLA_TIMERD__ variables and rules that the chart, compose, the
#                      unit and kubernetes/ pass, run through `sla-timerd check-config`
#   AsyncAPI document  @asyncapi/parser; every example input and alert validated
#                      against its schemas, and the inputs it refuses compared with
#                      what sla-timerd replay dead-letters (when the binary is built)
#   kubernetes/, Dockerfile  the plain manifest through kubeconform; the image's stages
#
# Installs what it needs on a fresh Debian machine: promtool (Debian's prometheus) and
# systemd-analyze with apt; helm and kubeconform with `go install` from the Go module
# proxy; Python packages into a virtual environment; the npm packages with `npm ci`.
# All of it is cached in $SLA_DEPLOY_TOOLS (default ~/.cache/sla-timerd/deploy-tools),
# keyed by the versions pinned here and in deploy/checks/, so a rerun installs nothing.
#
# kubeconform fetches its schemas over the network by default, and this machine reaches
# no such host: the schemas come from the PyPI package kubernetes-validate instead,
# made standalone by deploy/checks/k8s_schemas.py.
#
#   SLA_TIMERD_BIN    the binary for the dead-letter comparison (default: the newest of
#                     target/{debug,release}/sla-timerd, if any)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

HELM_VERSION=v3.22.0
KUBECONFORM_VERSION=v0.8.0
KUBE_VERSION=1.37.0

TOOLS=${SLA_DEPLOY_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/sla-timerd/deploy-tools}
BIN=$TOOLS/bin
PY=$TOOLS/venv/bin/python
NODE_DIR=$TOOLS/node
mkdir -p "$BIN"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

log() { echo "check-deploy.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }
now() { date +%s.%N; }
TIMES=()
# step NAME COMMAND...: runs a check, and notes how long it took.
step() {
  local name=$1 start
  shift
  start=$(now)
  log "$name"
  "$@"
  TIMES+=("$(awk -v a="$start" -v b="$(now)" -v n="$name" 'BEGIN { printf "%6.1fs  %s", b - a, n }')")
}
digest() { cat "$@" | sha256sum | cut -c1-16; }

# --- tools ------------------------------------------------------------------------

apt_tool() { # COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 && return
  [ "$(id -u)" = 0 ] || die "$1 is missing: apt-get install $2 (as root)"
  log "installing $2 with apt (for $1)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "$2" >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "$2" >/dev/null; }
  command -v "$1" >/dev/null 2>&1 || die "$2 installed no $1"
}

go_tool() { # NAME PACKAGE@VERSION
  local stamp=$BIN/.$1.version
  [ -x "$BIN/$1" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$2" ] && return
  command -v go >/dev/null 2>&1 || die "go is missing (needed to install $1)"
  log "building $1 from $2 (Go module proxy)"
  GOBIN=$BIN GOFLAGS=-buildvcs=false go install "$2"
  echo "$2" >"$stamp"
}

compose_tool() {
  local src=deploy/checks/compose key
  key=$(digest $src/go.mod $src/go.sum $src/main.go)
  [ -x "$BIN/compose-config" ] && [ "$(cat "$BIN/.compose-config.version" 2>/dev/null)" = "$key" ] && return
  log "building compose-config (compose-go, Go module proxy)"
  (cd $src && GOFLAGS=-buildvcs=false go build -o "$BIN/compose-config" .)
  echo "$key" >"$BIN/.compose-config.version"
}

python_env() {
  local key
  key=$(digest deploy/checks/requirements.txt)
  [ -x "$PY" ] && [ "$(cat "$TOOLS/venv/.requirements" 2>/dev/null)" = "$key" ] && return
  log "installing deploy/checks/requirements.txt into $TOOLS/venv (PyPI)"
  rm -rf "$TOOLS/venv"
  python3 -m venv "$TOOLS/venv"
  "$PY" -m pip install -q --disable-pip-version-check -r deploy/checks/requirements.txt
  echo "$key" >"$TOOLS/venv/.requirements"
}

node_env() {
  local key
  key=$(digest deploy/checks/package.json deploy/checks/package-lock.json)
  if ! [ -d "$NODE_DIR/node_modules" ] || [ "$(cat "$NODE_DIR/.lock" 2>/dev/null)" != "$key" ]; then
    command -v npm >/dev/null 2>&1 || die "npm is missing (needed for the AsyncAPI parser)"
    log "installing deploy/checks/package.json into $NODE_DIR (npm)"
    rm -rf "$NODE_DIR" && mkdir -p "$NODE_DIR"
    cp deploy/checks/package.json deploy/checks/package-lock.json "$NODE_DIR/"
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$key" >"$NODE_DIR/.lock"
  fi
  cp deploy/checks/*.mjs "$NODE_DIR/"   # ES modules find node_modules beside them
}

install_tools() {
  apt_tool promtool prometheus
  apt_tool systemd-analyze systemd
  go_tool helm "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  go_tool kubeconform "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
  compose_tool
  python_env
  node_env
}

# --- checks -----------------------------------------------------------------------

CHART=deploy/helm/sla-timerd
SCHEMAS=$TOOLS/k8s-schemas

chart_copies() {
  # The chart cannot read files outside itself; it carries copies, kept equal here.
  local pair
  for pair in config/default.toml:files/config.toml \
    deploy/prometheus/sla-timerd.rules.yml:files/sla-timerd.rules.yml \
    deploy/grafana/sla-timerd.json:files/sla-timerd.json; do
    cmp -s "${pair%%:*}" "$CHART/${pair#*:}" ||
      die "$CHART/${pair#*:} differs from ${pair%%:*}: cp ${pair%%:*} $CHART/${pair#*:}"
  done
  echo "$CHART/files: copies of config/default.toml, the rules and the dashboard are current"
}

FULL=(--set metrics.serviceMonitor.enabled=true --set metrics.podMonitor.enabled=true
  --set metrics.prometheusRule.enabled=true --set metrics.grafanaDashboard.enabled=true
  --set http.apiToken=t0ken --set kafka.sasl.mechanism=SCRAM-SHA-512
  --set kafka.sasl.username=sla --set kafka.sasl.password=pw
  --set-string 'kafka.properties.security\.protocol=SASL_SSL'
  --set http.livenessTimeoutSeconds=90)

helm_lint() {
  "$BIN/helm" lint --strict --kube-version "$KUBE_VERSION" "$CHART"
  "$BIN/helm" lint --strict --kube-version "$KUBE_VERSION" "$CHART" "${FULL[@]}" >/dev/null
}

helm_render() {
  local h=("$BIN/helm" template sla-timerd "$CHART" --kube-version "$KUBE_VERSION")
  "${h[@]}" >"$WORK/statefulset.yaml"
  "${h[@]}" --set workload.kind=Deployment >"$WORK/deployment.yaml"
  "${h[@]}" "${FULL[@]}" >"$WORK/full.yaml"
  # Values that contradict each other are refused, naming the values.
  if "${h[@]}" --set probes.liveness.periodSeconds=30 >/dev/null 2>"$WORK/err"; then
    die "helm template took a liveness window longer than http.liveness_timeout"
  fi
  grep -q "must be shorter than http.liveness_timeout" "$WORK/err" || { cat "$WORK/err"; die "unexpected helm error"; }
  # values.schema.json: a secret among the plain properties is refused.
  if "${h[@]}" --set-string 'kafka.properties.sasl\.password=x' >/dev/null 2>"$WORK/err"; then
    die "helm template took a password in kafka.properties (it belongs in the Secret)"
  fi
  echo "rendered: StatefulSet ($(grep -c '^kind:' "$WORK/statefulset.yaml") objects), Deployment," \
    "every option ($(grep -c '^kind:' "$WORK/full.yaml") objects); contradictory probe values and a" \
    "password among the plain properties refused"
}

kube_schemas() {
  cat "$WORK"/*.yaml deploy/kubernetes/sla-timerd.yaml | "$PY" deploy/checks/k8s_schemas.py "$SCHEMAS" "$KUBE_VERSION"
  "$BIN/kubeconform" -strict -summary -kubernetes-version "$KUBE_VERSION" \
    -schema-location "$SCHEMAS/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
    -skip ServiceMonitor,PodMonitor,PrometheusRule \
    "$WORK/statefulset.yaml" "$WORK/deployment.yaml" "$WORK/full.yaml" deploy/kubernetes/sla-timerd.yaml
  "$PY" -c 'import json, sys, yaml; json.dump([d for d in yaml.safe_load_all(sys.stdin) if d], sys.stdout)' \
    <"$WORK/full.yaml" >"$WORK/full.json"
  (cd "$NODE_DIR" && node monitors.mjs "$WORK/full.json")
}

chart_semantics() {
  "$PY" deploy/checks/chart.py src/config/service.rs "$WORK/statefulset.yaml" "$WORK/deployment.yaml" \
    deploy/docker-compose.yml deploy/systemd/sla-timerd.service
}

daemon_settings() {
  local bin
  bin=$(daemon_binary)
  if [ -z "$bin" ]; then
    echo "no sla-timerd binary (cargo build): the settings each asset passes were not run through check-config"
    return
  fi
  "$PY" deploy/checks/settings.py "$bin" "$WORK/full.yaml" deploy/docker-compose.yml \
    deploy/systemd/sla-timerd.service deploy/systemd/sla-timerd.env deploy/kubernetes/sla-timerd.yaml
}

prometheus_rules() {
  (cd deploy/prometheus && promtool check rules sla-timerd.rules.yml && promtool test rules sla-timerd.rules.test.yml)
  promtool check config deploy/compose/prometheus.yml
}

metric_names() {
  "$PY" deploy/checks/metrics.py src/metrics.rs deploy/grafana/sla-timerd.json deploy/prometheus/sla-timerd.rules.yml
}

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

live_queries() {
  # A real Prometheus server (Debian's prometheus package, which also brought promtool)
  # evaluates every dashboard query and rule (deploy/checks/promql.py). Where a broker
  # is at hand (KAFKA_BOOTSTRAP_SERVERS, as scripts/test.sh starts one), it first
  # scrapes `sla-timerd run` on topics of its own for a few seconds, so that the
  # queries meet the daemon's real series and labels.
  local bin port prom daemon="" id="" rc=0
  bin=$(daemon_binary)
  if ! command -v prometheus >/dev/null 2>&1; then
    echo "no prometheus server here: the queries were not evaluated"
    return
  fi
  port=$(free_port)
  if [ -n "$bin" ] && [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
    id=deploy-check-$$
    # The input topics (one JVM start each); the alert and dead-letter topics are only
    # written to with input, and there is none. The test broker goes with its run.
    if scripts/kafka.sh topics "$id-cm:2" "$id-rr:2" "$id-sh:2" >"$WORK/topics.log" 2>&1; then
      env SLA_TIMERD__KAFKA__BOOTSTRAP_SERVERS="$KAFKA_BOOTSTRAP_SERVERS" SLA_TIMERD__KAFKA__GROUP_ID="$id" \
        SLA_TIMERD__KAFKA__TOPICS__CUSTOMER_MESSAGE="$id-cm" SLA_TIMERD__KAFKA__TOPICS__RETURN_REQUEST="$id-rr" \
        SLA_TIMERD__KAFKA__TOPICS__SHIPMENT="$id-sh" SLA_TIMERD__KAFKA__TOPICS__ALERTS="$id-alerts" \
        SLA_TIMERD__KAFKA__TOPICS__DEAD_LETTER="$id-dl" SLA_TIMERD__HTTP__LISTEN="127.0.0.1:$port" \
        "$bin" run >"$WORK/daemon.log" 2>&1 &
      daemon=$!
    else
      echo "could not create topics on $KAFKA_BOOTSTRAP_SERVERS: the queries meet no data"
    fi
  else
    echo "no broker (KAFKA_BOOTSTRAP_SERVERS) or no sla-timerd binary: the queries are evaluated on no data"
  fi
  cat >"$WORK/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [$ROOT/deploy/prometheus/sla-timerd.rules.yml]
scrape_configs:
  - job_name: sla-timerd
    static_configs: [{targets: ["127.0.0.1:$port"]}]
YAML
  local url=127.0.0.1:$(free_port)
  prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
    --web.listen-address="$url" >"$WORK/prometheus.log" 2>&1 &
  prom=$!
  "$PY" -c 'import sys, time, urllib.request
for _ in range(100):
    try:
        urllib.request.urlopen(sys.argv[1] + "/-/ready", timeout=1); sys.exit(0)
    except Exception:
        time.sleep(0.2)
sys.exit(1)' "http://$url" || { tail -5 "$WORK/prometheus.log"; die "prometheus did not start"; }
  if [ -n "$daemon" ]; then sleep 12; else sleep 2; fi
  "$PY" deploy/checks/promql.py "http://$url" deploy/grafana/sla-timerd.json \
    deploy/prometheus/sla-timerd.rules.yml || rc=$?
  kill "$prom" 2>/dev/null || true
  wait "$prom" 2>/dev/null || true
  if [ -n "$daemon" ]; then
    kill -TERM "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || echo "note: sla-timerd run ended with an error: $(tail -1 "$WORK/daemon.log")"
  fi
  return $rc
}

compose_config() {
  "$BIN/compose-config" -f deploy/docker-compose.yml
  if docker compose version >/dev/null 2>&1; then
    docker compose -f deploy/docker-compose.yml config -q && echo "docker compose config: ok"
  else
    echo "docker compose: no such client here (the docker CLI has no compose plugin); compose-go checked it"
  fi
}

daemon_binary() {
  if [ -n "${SLA_TIMERD_BIN:-}" ]; then echo "$SLA_TIMERD_BIN"; return; fi
  local target=${CARGO_TARGET_DIR:-target}
  ls -t "$target"/debug/sla-timerd "$target"/release/sla-timerd 2>/dev/null | head -1 || true
}

systemd_unit() {
  # verify wants the programs and files the unit names to exist: point them at the
  # built binary (or a stand-in) and the example environment file.
  local bin unit=$WORK/sla-timerd.service
  bin=$(daemon_binary)
  if [ -z "$bin" ]; then
    bin=$WORK/sla-timerd-stand-in && printf '#!/bin/sh\n' >"$bin" && chmod +x "$bin"
  fi
  sed -e "s#/usr/local/bin/sla-timerd#$(realpath "$bin")#g" \
    -e "s#/etc/sla-timerd/sla-timerd.env#$ROOT/deploy/systemd/sla-timerd.env#" \
    deploy/systemd/sla-timerd.service >"$unit"
  # It warns (an unknown key, a bad value) and still exits 0: any output fails here.
  systemd-analyze verify "$unit" >"$WORK/verify" 2>&1 || true
  [ ! -s "$WORK/verify" ] || { cat "$WORK/verify"; die "systemd-analyze verify found problems"; }
  echo "systemd-analyze verify deploy/systemd/sla-timerd.service: ok"
  systemd-analyze security --offline=yes --threshold=20 "$unit" | tail -1
}

asyncapi() {
  local bin
  bin=$(daemon_binary)
  (cd "$NODE_DIR" && node asyncapi.mjs "$ROOT/deploy/asyncapi/sla-timerd.asyncapi.yaml")
  local examples=(--examples deploy/asyncapi/examples --examples tests/data)
  if [ -d ../shared/spec/examples ]; then
    examples+=(--examples ../shared/spec/examples)
  else
    echo "../shared/spec/examples: not here; checked the repository's own examples only"
  fi
  "$PY" deploy/checks/events.py deploy/asyncapi/sla-timerd.asyncapi.yaml ${bin:+--binary "$bin"} "${examples[@]}"
}

plain_manifest() {
  "$PY" - <<'PY'
import yaml
docs = [d for d in yaml.safe_load_all(open("deploy/kubernetes/sla-timerd.yaml")) if d]
kinds = sorted(d["kind"] for d in docs)
assert kinds == ["ConfigMap", "Deployment", "Service"], kinds
dep = next(d for d in docs if d["kind"] == "Deployment")
c = dep["spec"]["template"]["spec"]["containers"][0]
assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
env = {e["name"]: e for e in c["env"]}
assert env["SLA_TIMERD__KAFKA__CLIENT_ID"]["value"] == "$(POD_NAME)", "pods need client ids of their own"
assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
print("deploy/kubernetes/sla-timerd.yaml: ok,", ", ".join(kinds))
PY
  grep -q '^FROM .* AS build' deploy/Dockerfile
  grep -q '^ENTRYPOINT \["/usr/local/bin/sla-timerd"\]' deploy/Dockerfile
  echo "deploy/Dockerfile: ok"
}

start=$(now)
step "tools (installed once, then cached in $TOOLS)" install_tools
step "chart: copies of the shared files" chart_copies
step "chart: helm lint" helm_lint
step "chart: helm template" helm_render
step "chart: kubeconform, Prometheus Operator schemas" kube_schemas
step "chart, compose, systemd: what the daemon needs" chart_semantics
step "chart, compose, systemd, kubernetes/: sla-timerd check-config on their settings" daemon_settings
step "prometheus: promtool check and test rules" prometheus_rules
step "dashboard and rules: metric names" metric_names
step "dashboard and rules: evaluated by Prometheus" live_queries
step "compose: config" compose_config
step "systemd: verify and security" systemd_unit
step "asyncapi: parser, schemas against the examples" asyncapi
step "kubernetes/ manifest and Dockerfile" plain_manifest
log "timings:"
printf '%s\n' "${TIMES[@]}" >&2
log "deploy assets: all checks passed in $(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')s"
