// Reports the client bundle (wasm + JS glue), raw and brotli, and enforces the size budget.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

// Issue #6's budget, "≤ 250 KB brotli", read strictly: 250,000 bytes (the smaller of KB and KiB).
const BUDGET_BROTLI = 250_000;
const dir = process.argv[2] ?? 'target/site/pkg';
const size = (name) => statSync(path.join(dir, name)).size;
const files = readdirSync(dir).filter((n) => /\.(js|wasm)$/.test(n));
let raw = 0;
let brotli = 0;
for (const name of files) {
  raw += size(name);
  brotli += size(`${name}.br`);
  console.log(`${name}: ${size(name)} B raw, ${size(`${name}.br`)} B brotli`);
}
const kb = (n) => `${(n / 1000).toFixed(1)} kB (${(n / 1024).toFixed(1)} KiB)`;
console.log(`bundle: ${kb(raw)} raw, ${kb(brotli)} brotli; budget ${kb(BUDGET_BROTLI)} brotli`);
if (brotli > BUDGET_BROTLI) {
  console.error('bundle size budget exceeded');
  process.exit(1);
}
