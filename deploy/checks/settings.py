"""The settings each deploy asset passes are ones the daemon accepts.

    python settings.py SLA_TIMERD CHART.yaml COMPOSE.yml UNIT.service ENV_FILE MANIFEST.yaml

For the rendered Helm chart, the compose service, the systemd unit with its example
environment file and the plain Kubernetes manifest, this gathers the SLA_TIMERD__
variables and the rules file as the daemon would get them (secrets and the pod name
filled in with stand-ins) and runs `sla-timerd check-config` on them, which checks every
name and value as `run` does and fails naming the variable.

Two settings of the contract may be newer than the binary at hand: http.api_token
(section 12) and http.liveness_timeout (section 9.3). When the binary refuses one of
those as unknown, it is left out and said so; any other refusal fails.
"""

import os
import re
import subprocess
import sys
import tempfile

import yaml

NEWER = {"SLA_TIMERD__HTTP__API_TOKEN", "SLA_TIMERD__HTTP__LIVENESS_TIMEOUT"}
POD = "sla-timerd-0"


def check(binary, what, env, config):
    env = dict(env)
    while True:
        run_env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/"), **env}
        out = subprocess.run([binary, "check-config", "--config", config], env=run_env, capture_output=True, text=True)
        if out.returncode == 0:
            break
        m = re.search(r"environment (SLA_TIMERD__\w+): \S+: unknown field", out.stderr)
        if m and m.group(1) in NEWER and m.group(1) in env:
            print(f"{what}: this sla-timerd does not know {m.group(1)} yet; checked without it")
            del env[m.group(1)]
            continue
        sys.exit(f"{what}: sla-timerd check-config refused the settings:\n{out.stderr.strip()}")
    names = sorted(k for k in env if k.startswith("SLA_TIMERD"))
    print(f"{what}: sla-timerd check-config accepts its {len(names)} settings and the rules")


def chart(path, tmp):
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    work = next(d for d in docs if d["kind"] in ("StatefulSet", "Deployment"))
    (c,) = work["spec"]["template"]["spec"]["containers"]
    env = container_env(c["env"])
    config = next(d for d in docs if d["kind"] == "ConfigMap" and "config.toml" in d.get("data", {}))
    rules = os.path.join(tmp, "chart-config.toml")
    open(rules, "w").write(config["data"]["config.toml"])
    return env, rules


def compose(path):
    service = yaml.safe_load(open(path))["services"]["sla-timerd"]
    env = {k: str(v) for k, v in service["environment"].items()}
    mount = next(v for v in service["volumes"] if v.endswith(":/etc/sla-timerd/config.toml:ro"))
    return env, os.path.join(os.path.dirname(path), mount.split(":")[0])


def systemd(unit, env_file):
    env = {}
    for line in open(env_file):
        line = line.strip()
        if line and not line.startswith("#"):
            k, v = line.split("=", 1)
            env[k] = v
    for m in re.finditer(r"^Environment=(\S+?)=(.*)$", open(unit).read(), re.M):
        env[m.group(1)] = m.group(2)
    return env


def manifest(path):
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    env = dict(next(d for d in docs if d["kind"] == "ConfigMap")["data"])
    work = next(d for d in docs if d["kind"] == "Deployment")
    env.update(container_env(work["spec"]["template"]["spec"]["containers"][0].get("env", [])))
    return env


def container_env(entries):
    """A Kubernetes container's env list as the process would see it: the pod's name for
    $(POD_NAME) and field references, a stand-in for values from secrets."""
    env = {}
    for e in entries:
        if "value" in e:
            env[e["name"]] = e["value"].replace("$(POD_NAME)", POD)
        elif "fieldRef" in e["valueFrom"]:
            env[e["name"]] = POD
        else:
            env[e["name"]] = "stand-in-secret"
    return env


def main():
    binary, chart_yaml, compose_yml, unit, env_file, manifest_yaml = sys.argv[1:]
    root_config = os.path.join(os.path.dirname(__file__), "..", "..", "config", "default.toml")
    with tempfile.TemporaryDirectory() as tmp:
        check(binary, "helm chart (every option on)", *chart(chart_yaml, tmp))
        check(binary, compose_yml, *compose(compose_yml))
        check(binary, f"{unit} with {env_file}", systemd(unit, env_file), root_config)
        check(binary, manifest_yaml, manifest(manifest_yaml), root_config)


if __name__ == "__main__":
    main()
