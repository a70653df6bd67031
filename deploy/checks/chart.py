"""What the deploy assets promise about the daemon, checked on what they render.

    python chart.py SERVICE_RS STATEFULSET.yaml DEPLOYMENT.yaml COMPOSE.yml UNIT.service

kubeconform checks that the rendered objects are valid Kubernetes; this checks that
they run sla-timerd as its README says it must be run:

* probes: liveness on /healthz, readiness on /readyz, on the http port; the liveness
  window (period x threshold) shorter than http.liveness_timeout, its default read
  from src/config/service.rs when the chart passes none;
* stopping: the grace period (Kubernetes), stop_grace_period (Compose) and
  TimeoutStopSec (systemd) all longer than the preStop sleep plus
  kafka.shutdown_timeout, whose default is read from src/config/service.rs;
* identity: client.id from the pod name; group.instance.id from the pod name only
  where names are stable (StatefulSet), none in a Deployment;
* secrets: the SASL password and the API token (SLA_TIMERD__HTTP__API_TOKEN) come from
  the Secret, never a literal value;
* hardening: non-root, read-only root filesystem, no privilege escalation, all
  capabilities dropped; the config mounted where the arguments say.
"""

import re
import sys

import yaml


def seconds(text):
    m = re.fullmatch(r"\s*(\d+)\s*(ms|s|m|h)?\s*", str(text))
    if not m:
        sys.exit(f"cannot read a duration from {text!r}")
    n, unit = int(m.group(1)), m.group(2) or "s"
    return {"ms": n / 1000, "s": n, "m": n * 60, "h": n * 3600}[unit]


def daemon_default(service_rs, fn):
    m = re.search(rf'fn {fn}\(\) -> String \{{\s*"([^"]+)"', open(service_rs).read())
    if not m:
        sys.exit(f"{service_rs}: no {fn}() found; has the file changed shape?")
    return seconds(m.group(1))


problems = []


def expect(ok, what):
    if not ok:
        problems.append(what)


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}


def check_workload(path, kind, shutdown, liveness_default):
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    work = [d for d in docs if d["kind"] == kind]
    expect(len(work) == 1, f"{path}: one {kind} expected, found {len(work)}")
    if not work:
        return
    spec = work[0]["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    env = env_of(c)
    port = next(p["containerPort"] for p in c["ports"] if p["name"] == "http")
    live, ready = c["livenessProbe"], c["readinessProbe"]
    expect(live["httpGet"] == {"path": "/healthz", "port": "http"}, f"{path}: liveness must GET /healthz")
    expect(ready["httpGet"] == {"path": "/readyz", "port": "http"}, f"{path}: readiness must GET /readyz")
    timeout = seconds(env["SLA_TIMERD__HTTP__LIVENESS_TIMEOUT"]["value"]) if "SLA_TIMERD__HTTP__LIVENESS_TIMEOUT" in env else liveness_default
    window = live["periodSeconds"] * live["failureThreshold"]
    expect(window < timeout, f"{path}: liveness window {window}s is not shorter than http.liveness_timeout {timeout}s")
    expect(env["SLA_TIMERD__HTTP__LISTEN"]["value"].endswith(f":{port}"), f"{path}: http.listen is not the container port {port}")
    drain = seconds(env["SLA_TIMERD__KAFKA__SHUTDOWN_TIMEOUT"]["value"]) if "SLA_TIMERD__KAFKA__SHUTDOWN_TIMEOUT" in env else shutdown
    pre = c["lifecycle"]["preStop"]["sleep"]["seconds"]
    grace = spec["terminationGracePeriodSeconds"]
    expect(grace > pre + drain, f"{path}: terminationGracePeriodSeconds {grace} is not longer than preStop {pre}s + shutdown {drain}s")
    ref = lambda name: env.get(name, {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    expect(ref("POD_NAME") == "metadata.name", f"{path}: POD_NAME must come from metadata.name")
    expect(env["SLA_TIMERD__KAFKA__CLIENT_ID"].get("value") == "$(POD_NAME)", f"{path}: client.id must be the pod name")
    gid = env.get("SLA_TIMERD__KAFKA__PROPERTIES__GROUP_INSTANCE_ID", {}).get("value")
    if kind == "StatefulSet":
        expect(gid == "$(POD_NAME)", f"{path}: group.instance.id must be the pod name in a StatefulSet")
    else:
        expect(gid is None, f"{path}: a Deployment's pod names change; it must set no group.instance.id")
    for name, key in [("SLA_TIMERD__KAFKA__PROPERTIES__SASL_PASSWORD", "sasl-password"), ("SLA_TIMERD__HTTP__API_TOKEN", "api-token")]:
        sk = env.get(name, {}).get("valueFrom", {}).get("secretKeyRef", {})
        expect(sk.get("key") == key and "value" not in env.get(name, {}), f"{path}: {name} must come from the Secret's {key}")
    for e in c.get("env", []):
        expect(not ("PASSWORD" in e["name"] or "TOKEN" in e["name"]) or "value" not in e, f"{path}: {e['name']} is a literal")
    sc, psc = c["securityContext"], spec["securityContext"]
    expect(psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) != 0, f"{path}: pods must run as non-root")
    expect(sc.get("readOnlyRootFilesystem") is True, f"{path}: the root filesystem must be read-only")
    expect(sc.get("allowPrivilegeEscalation") is False, f"{path}: privilege escalation must be off")
    expect(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{path}: all capabilities must be dropped")
    config = c["args"][c["args"].index("--config") + 1]
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    expect(any(config.startswith(m + "/") for m in mounts), f"{path}: --config {config} is not on a mounted volume")
    kinds = {d["kind"] for d in docs}
    for k in ["ConfigMap", "Service", "PodDisruptionBudget"]:
        expect(k in kinds, f"{path}: no {k}")
    print(f"{path}: {kind} ok: probes /healthz (window {window}s < liveness_timeout {timeout:g}s) and /readyz; "
          f"grace {grace}s > preStop {pre}s + shutdown {drain:g}s; identity from the pod name; secrets from the Secret")


def main():
    service_rs, sts, dep, compose, unit = sys.argv[1:]
    shutdown = daemon_default(service_rs, "default_shutdown_timeout")
    liveness = 60  # contract 9.3: http.liveness_timeout defaults to 60 s
    m = re.search(r'fn default_liveness_timeout\(\) -> String \{\s*"([^"]+)"', open(service_rs).read())
    if m:
        liveness = seconds(m.group(1))
    check_workload(sts, "StatefulSet", shutdown, liveness)
    check_workload(dep, "Deployment", shutdown, liveness)
    daemon = yaml.safe_load(open(compose))["services"]["sla-timerd"]
    grace = seconds(daemon.get("stop_grace_period", "10s"))
    expect(grace > shutdown, f"{compose}: stop_grace_period {grace}s is not longer than kafka.shutdown_timeout {shutdown}s")
    text = open(unit).read()
    stop = re.search(r"^TimeoutStopSec=(\S+)", text, re.M)
    expect(stop and seconds(stop.group(1)) > shutdown, f"{unit}: TimeoutStopSec is not longer than kafka.shutdown_timeout {shutdown}s")
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        sys.exit(f"{len(problems)} problem(s)")
    print(f"{compose}: stop_grace_period {grace:g}s, {unit}: TimeoutStopSec {stop.group(1)}s; "
          f"both longer than kafka.shutdown_timeout ({shutdown:g}s)")


if __name__ == "__main__":
    main()
