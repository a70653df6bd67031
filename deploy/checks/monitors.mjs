// Validates the Prometheus Operator objects the chart renders (ServiceMonitor,
// PodMonitor, PrometheusRule) against their CRDs' schemas, as packaged by
// @kubernetes-models/prometheus-operator. Usage: node monitors.mjs RESOURCES.json
// (a JSON array of objects; those of other kinds are ignored).
import { readFileSync } from "node:fs";
import { PodMonitor, PrometheusRule, ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const models = { ServiceMonitor, PodMonitor, PrometheusRule };
const objects = JSON.parse(readFileSync(process.argv[2], "utf8"));
let failed = 0;
const seen = [];
for (const o of objects) {
  const Model = models[o.kind];
  if (!Model || o.apiVersion !== "monitoring.coreos.com/v1") continue;
  try {
    new Model(o).validate();
    seen.push(o.kind);
  } catch (e) {
    failed += 1;
    console.error(`${o.kind} ${o.metadata?.name}: ${e.message}`);
  }
}
if (failed) process.exit(1);
console.log(`monitoring.coreos.com/v1 objects valid: ${seen.join(", ") || "none"}`);
