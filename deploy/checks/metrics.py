"""Every dashboard panel query and every alert rule names metrics the daemon exports.

    python metrics.py src/metrics.rs DASHBOARD.json RULES.yml...

The exported names are read from src/metrics.rs (the string literals that name a
metric, before its tests); a histogram also exports `_bucket`, `_sum` and `_count`.
A PromQL expression's metric names are what is left once strings, label matchers,
ranges, Grafana variables, `by (...)`-style label lists, function names, keywords and
numbers are taken out. Each expression must name at least one metric, and only
exported ones. Exported metrics that no panel shows are listed (not an error).
"""

import json
import re
import sys

import yaml

KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "and", "or", "unless", "offset", "atan2", "inf", "nan",
}


def exported(metrics_rs):
    text = open(metrics_rs).read().split("#[cfg(test)]")[0]
    names = set(re.findall(r'"(sla_[a-z0-9_]+)"', text))
    histograms = set(re.findall(r'histogram\(\s*&r,\s*"(sla_[a-z0-9_]+)"', text))
    histograms |= set(re.findall(r'HistogramOpts::new\(\s*"(sla_[a-z0-9_]+)"', text))
    if not names or not histograms:
        sys.exit(f"{metrics_rs}: found no metric names; has the file changed shape?")
    series = set(names)
    for h in histograms:
        series |= {h + "_bucket", h + "_sum", h + "_count"}
    return names, series


def metric_names(expr):
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)          # strings
    e = re.sub(r"\$\{[^}]*\}|\$\w+", "1m", e)             # Grafana variables
    e = re.sub(r"\{[^}]*\}", "", e)                       # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)                      # ranges and subqueries
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    found = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        name = m.group(0)
        rest = e[m.end():].lstrip()
        if name.lower() in KEYWORDS or rest.startswith("("):
            continue
        if re.fullmatch(r"[0-9.]+[smhdwy]?", name):
            continue
        found.add(name)
    return found


def dashboard_queries(path):
    dash = json.load(open(path))
    def panels(ps):
        for p in ps:
            yield p
            yield from panels(p.get("panels", []))
    for p in panels(dash.get("panels", [])):
        if p.get("type") == "row":
            continue
        targets = p.get("targets") or []
        if not targets:
            yield f"panel {p.get('title')!r}", None
        for t in targets:
            yield f"panel {p.get('title')!r} query {t.get('refId')}", t.get("expr")
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v.get("query")
            yield f"variable {v['name']!r}", q.get("query") if isinstance(q, dict) else q


def rule_queries(path):
    for g in yaml.safe_load(open(path))["groups"]:
        for r in g["rules"]:
            yield f"rule {r.get('alert') or r.get('record')!r}", r["expr"]


def main():
    metrics_rs, dashboard, *rules = sys.argv[1:]
    names, series = exported(metrics_rs)
    problems, shown = [], set()
    checked = {dashboard: 0, **{r: 0 for r in rules}}
    sources = [(dashboard, dashboard_queries(dashboard))] + [(r, rule_queries(r)) for r in rules]
    for path, queries in sources:
        for what, expr in queries:
            checked[path] += 1
            if not expr:
                problems.append(f"{path}: {what} has no query")
                continue
            if what.startswith("variable"):
                expr = re.sub(r"label_values\(([^,)]*)(,[^)]*)?\)", r"\1", expr)
            used = metric_names(expr)
            unknown = used - series
            if unknown:
                problems.append(f"{path}: {what} names {sorted(unknown)}, which the daemon does not export")
            if not used & series:
                problems.append(f"{path}: {what} names no metric of the daemon: {expr!r}")
            if path == dashboard:
                shown |= {re.sub(r"_(bucket|sum|count)$", "", u) if u not in names else u for u in used}
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        sys.exit(f"{len(problems)} problem(s)")
    print(f"{len(names)} metrics exported by {metrics_rs}; every query names only them: "
          + ", ".join(f"{p} ({n} queries)" for p, n in checked.items()))
    missing = sorted(names - shown)
    if missing:
        print(f"note: {dashboard} shows no panel of {missing}")


if __name__ == "__main__":
    main()
