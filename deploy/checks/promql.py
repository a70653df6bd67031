"""Evaluates every dashboard query and alert rule on a Prometheus server.

    python promql.py PROMETHEUS_URL DASHBOARD.json RULES.yml...

promtool checks the rules' syntax, but nothing else parses the dashboard's queries. Here
a real Prometheus (Debian's, as promtool), which scripts/check-deploy.sh lets scrape
`sla-timerd run` when a broker is at hand, evaluates each query, with Grafana's
variables given values: a query that Prometheus refuses fails the check. Queries that
return no series are listed: some only have data when something goes wrong (produce
errors, dead letters, restores), or once records flow.
"""

import json
import os
import re
import sys
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from metrics import dashboard_queries, rule_queries  # noqa: E402

GRAFANA = {"$__rate_interval": "15s", "$__range": "1m", "$__interval": "5s", "$instance": ".*"}


def grafana_to_promql(expr):
    for name, value in GRAFANA.items():
        expr = expr.replace(name, value)
    return re.sub(r"label_values\(([^,)]*)(,[^)]*)?\)", r"group by () (\1)", expr)


def query(base, expr):
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:
        body = json.load(e)
    if body.get("status") != "success":
        return None, body.get("error", "no answer")
    return len(body["data"]["result"]), None


def main():
    base, dashboard, *rules = sys.argv[1:]
    sources = [(dashboard, dashboard_queries(dashboard))] + [(r, rule_queries(r)) for r in rules]
    failures, empty, total, with_data = [], [], 0, 0
    for path, queries in sources:
        for what, expr in queries:
            total += 1
            n, err = query(base, grafana_to_promql(expr))
            if err:
                failures.append(f"{path}: {what}: Prometheus refuses {expr!r}: {err}")
            elif n:
                with_data += 1
            elif path == dashboard:
                empty.append(what)
    for f in failures:
        print(f, file=sys.stderr)
    if failures:
        sys.exit(f"{len(failures)} query(ies) refused")
    print(f"{total} queries evaluated by Prometheus, none refused; "
          f"{with_data} returned series (firing alert rules included)")
    if empty:
        print("no data in this short run: " + "; ".join(empty))


if __name__ == "__main__":
    main()
