"""Standalone Kubernetes JSON Schemas for kubeconform, from kubernetes-validate's.

    python k8s_schemas.py OUT_DIR KUBE_VERSION < RESOURCES.yaml

kubeconform fetches its schemas over the network by default; here there is none. The
PyPI package kubernetes-validate ships the Kubernetes OpenAPI schemas for each release
as JSON Schema files, whose `$ref`s point into one shared `_definitions.json`. For each
kind in the resources on standard input this writes one self-contained file (the
definitions it reaches inlined under `$defs`) at the path kubeconform's
`-schema-location OUT_DIR/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json`
reads. Kinds without a built-in schema (custom resources) are skipped here.
"""

import json
import os
import re
import sys

import kubernetes_validate
import yaml


def main():
    out, version = sys.argv[1], sys.argv[2].lstrip("v")
    base = os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema")
    src = os.path.join(base, f"v{version}-local-strict")
    if not os.path.isdir(src):
        known = sorted(v for v in os.listdir(base) if v.endswith("-local-strict"))
        sys.exit(f"kubernetes-validate has no schemas for {version}; it has {known[0]} to {known[-1]}")
    defs = json.load(open(os.path.join(src, "_definitions.json")))["$defs"]
    dest = os.path.join(out, f"v{version}-standalone-strict")
    os.makedirs(dest, exist_ok=True)
    written = []
    for doc in yaml.safe_load_all(sys.stdin):
        if not doc:
            continue
        group, _, ver = doc["apiVersion"].rpartition("/")
        suffix = f"-{group.split('.')[0]}-{ver}" if group else f"-{ver}"
        name = f"{doc['kind'].lower()}{suffix}.json"
        path = os.path.join(src, name)
        target = os.path.join(dest, name)
        if not os.path.exists(path) or os.path.exists(target):
            continue
        text = open(path).read().replace("/api/_definitions.json#/$defs/", "#/$defs/")
        schema = json.loads(text)
        reached, todo = {}, re.findall(r'"#/\$defs/([^"]+)"', text)
        while todo:
            d = todo.pop()
            if d in reached:
                continue
            reached[d] = defs[d]
            todo += re.findall(r'"#/\$defs/([^"]+)"', json.dumps(defs[d]))
        schema["$defs"] = reached
        json.dump(schema, open(target, "w"))
        written.append(name)
    print(f"kubernetes {version} schemas written: {', '.join(written) or 'none new'}")


if __name__ == "__main__":
    main()
