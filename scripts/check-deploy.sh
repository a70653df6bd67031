#!/usr/bin/env bash
# Checks the deploy assets as far as a machine without Docker allows: the Kubernetes
# manifests parse and hold the expected kinds, and the Dockerfile's stages and entry
# point are there. (The binary the image runs is built by the test suite.)
set -euo pipefail
cd "$(dirname "$0")/.."
python3 - <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open("deploy/kubernetes/sla-timerd.yaml")) if d]
kinds = sorted(d["kind"] for d in docs)
assert kinds == ["ConfigMap", "Deployment", "Service"], kinds
dep = next(d for d in docs if d["kind"] == "Deployment")
c = dep["spec"]["template"]["spec"]["containers"][0]
assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
print("deploy/kubernetes/sla-timerd.yaml: ok,", ", ".join(kinds))
PY
grep -q '^FROM .* AS build' deploy/Dockerfile
grep -q '^ENTRYPOINT \["/usr/local/bin/sla-timerd"\]' deploy/Dockerfile
echo "deploy/Dockerfile: ok"
