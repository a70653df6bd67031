// Parses deploy/asyncapi/sla-timerd.asyncapi.yaml with the AsyncAPI parser (its own
// schema of AsyncAPI 3, its Spectral rules, every $ref resolved) and fails on any
// error. Usage: node asyncapi.mjs FILE
import { readFileSync } from "node:fs";
import { Parser, DiagnosticSeverity } from "@asyncapi/parser";

const file = process.argv[2];
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(file, "utf8"), {
  source: file,
});
const where = (d) => (d.path && d.path.length ? d.path.join(".") : "(document)");
const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
for (const d of diagnostics) {
  const level = ["error", "warning", "info", "hint"][d.severity] ?? "note";
  if (d.severity <= DiagnosticSeverity.Warning) {
    console.error(`${file}: ${level}: ${where(d)}: ${d.message} (${d.code})`);
  }
}
if (!document || errors.length) {
  console.error(`${file}: ${errors.length} error(s)`);
  process.exit(1);
}
const channels = document.channels().all().map((c) => c.address());
const messages = document.components().messages().all().length;
console.log(
  `${file}: AsyncAPI ${document.version()} ok: ${channels.length} channels ` +
    `(${channels.join(", ")}), ${document.operations().all().length} operations, ${messages} messages`,
);
