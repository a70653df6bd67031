"""Validates example events and alerts against the AsyncAPI document's JSON Schemas.

    python events.py ASYNCAPI.yaml [--binary SLA_TIMERD] [--examples DIR]...

* Every line of every input file (`*.jsonl` but `*.alerts.jsonl`) is validated against
  `InputEvent`. A line the schema refuses must be one that sla-timerd dead-letters:
  with `--binary`, `sla-timerd replay --dead-letter` runs over the file and the two
  sets of line numbers must be equal (a schema that is too strict or too loose fails).
* Every example in the document matches its message's payload schema (the AsyncAPI
  parser does not check that).
* Every line of every `*.alerts.jsonl` (the contract's expected outputs) is validated
  against `AlertContract`, the fields contract section 8 pins.
* With `--binary`, the alerts that `replay` writes for each input are validated against
  `Alert`, everything sla-timerd writes. Replay runs with the shipped rules: whether a
  record is a dead letter does not depend on the rules, and the alerts' shape does not
  either (a NAME.toml beside an input, such as marketplace.toml, is not needed).
"""

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

import jsonschema
import yaml


def validator(doc, name):
    schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def why(v, instance):
    best = jsonschema.exceptions.best_match(v.iter_errors(instance))
    where = "/".join(str(p) for p in best.absolute_path) or "(record)"
    return f"{where}: {best.message[:160]}"


def lines(path):
    for n, line in enumerate(path.read_bytes().split(b"\n"), start=1):
        if line.strip():
            yield n, line


def refused_by_schema(v, path):
    refused = {}
    total = 0
    for n, raw in lines(path):
        total += 1
        try:
            event = json.loads(raw)
        except ValueError as e:
            refused[n] = f"not JSON ({e})"
            continue
        if not v.is_valid(event):
            refused[n] = why(v, event)
    return total, refused


def replay(binary, path):
    with tempfile.TemporaryDirectory() as tmp:
        dead = pathlib.Path(tmp, "dead.jsonl")
        cmd = [binary, "replay", "--dead-letter", str(dead), str(path)]
        out = subprocess.run(cmd, capture_output=True, check=True).stdout
        dead_lines = {json.loads(l)["line"] for l in dead.read_text().splitlines() if l.strip()}
    alerts = [json.loads(l) for l in out.decode().splitlines() if l.strip()]
    return dead_lines, alerts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("asyncapi")
    ap.add_argument("--binary")
    ap.add_argument("--examples", action="append", default=[])
    args = ap.parse_args()
    doc = yaml.safe_load(open(args.asyncapi))
    inputs, contract, full = (validator(doc, n) for n in ("InputEvent", "AlertContract", "Alert"))
    failures = []
    examples, refused = 0, len(failures)
    for name, message in doc["components"]["messages"].items():
        for ex in message.get("examples", []):
            schema = {**message["payload"], "components": doc["components"]}
            v = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
            examples += 1
            if not v.is_valid(ex["payload"]):
                failures.append(f"{args.asyncapi}: message {name}, example {ex.get('name')}: {why(v, ex['payload'])}")
    refused = len(failures) - refused
    print(f"{args.asyncapi}: {examples - refused} of {examples} message examples match their payload schemas")
    seen = {}
    for d in map(pathlib.Path, args.examples):
        for path in sorted(d.glob("*.jsonl")):
            content = path.read_bytes()
            if content in seen:
                print(f"{path}: the same as {seen[content]}")
                continue
            seen[content] = path
            if path.name.endswith(".alerts.jsonl"):
                bad = [(n, why(contract, json.loads(raw))) for n, raw in lines(path) if not contract.is_valid(json.loads(raw))]
                count = sum(1 for _ in lines(path))
                failures += [f"{path}:{n}: alert refused by AlertContract: {m}" for n, m in bad]
                print(f"{path}: {count - len(bad)} of {count} alerts match AlertContract")
                continue
            total, refused = refused_by_schema(inputs, path)
            note = ""
            if args.binary:
                dead, alerts = replay(args.binary, path)
                for n in sorted(set(refused) - dead):
                    failures.append(f"{path}:{n}: refused by InputEvent ({refused[n]}) but sla-timerd applies it")
                for n in sorted(dead - set(refused)):
                    failures.append(f"{path}:{n}: accepted by InputEvent but sla-timerd dead-letters it")
                bad = [(a["id"], why(full, a)) for a in alerts if not full.is_valid(a)]
                failures += [f"{path}: replay's alert {i} refused by Alert: {m}" for i, m in bad]
                note = (f"; sla-timerd dead-letters the same {len(dead)} lines; "
                        f"{len(alerts) - len(bad)} of {len(alerts)} replayed alerts match Alert")
            else:
                note = "; no binary given, so the dead letters were not compared"
            print(f"{path}: {total - len(refused)} of {total} lines match InputEvent, "
                  f"refused: {sorted(refused) or 'none'}{note}")
    for f in failures:
        print(f, file=sys.stderr)
    if failures:
        sys.exit(f"{len(failures)} problem(s)")


if __name__ == "__main__":
    main()
