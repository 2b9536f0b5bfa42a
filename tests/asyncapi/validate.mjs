// Validates one AsyncAPI document with the official parser (@asyncapi/parser) and prints its
// diagnostics as JSON: {"errors": [...], "warnings": [...]}. Exit 0 when there is no error,
// 1 when there is, 2 on a usage error. Run by tests/integration/test_asyncapi.py.
import { readFile } from "node:fs/promises";
import parserPackage from "@asyncapi/parser";

const { Parser } = parserPackage;
const [path] = process.argv.slice(2);
if (!path) {
  console.error("usage: node validate.mjs DOCUMENT.json");
  process.exit(2);
}
const { document, diagnostics } = await new Parser().parse(await readFile(path, "utf8"));
const show = (d) => ({ code: d.code, message: d.message, path: d.path.join("/") });
// Severity: 0 error, 1 warning, 2 information, 3 hint (Spectral's numbering).
const errors = diagnostics.filter((d) => d.severity === 0).map(show);
const warnings = diagnostics.filter((d) => d.severity === 1).map(show);
if (document === undefined && errors.length === 0) {
  errors.push({ code: "no-document", message: "the parser returned no document", path: "" });
}
console.log(JSON.stringify({ errors, warnings }, null, 2));
process.exit(errors.length ? 1 : 0);
