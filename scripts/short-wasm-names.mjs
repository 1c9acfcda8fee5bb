// Gives the browser bundle's wasm imports and exports one- or two-letter names, in the wasm and
// in the JS glue alike.
//
// wasm-bindgen names each JS function the wasm imports `__wbg_<name>_<16 hex digits>` and some
// exports after their mangled Rust paths (200 characters and more); every name is written twice,
// once in the wasm and once in the glue. About 400 of them, and their random hex digits do not
// compress: short names save ~5 kB of the brotli bundle (measured: docs/benchmarks.md).
//
// usage: node scripts/short-wasm-names.mjs WASM-OPT FILE.wasm FILE.js (both rewritten in place)
// binaryen's `--minify-imports-and-exports-and-modules` renames in the wasm and prints the
// mapping; this applies the mapping to the glue, and stops the build if anything does not match.
import { execFileSync } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

const [wasmOpt, wasmFile, jsFile] = process.argv.slice(2);
if (!jsFile) {
  console.error('usage: short-wasm-names.mjs WASM-OPT FILE.wasm FILE.js');
  process.exit(2);
}
const fail = (why) => {
  console.error(`short-wasm-names: ${why}`);
  process.exit(1);
};

const modules = (file) =>
  new Set(WebAssembly.Module.imports(new WebAssembly.Module(readFileSync(file))).map((i) => i.module));
const [before] = modules(wasmFile);
if (modules(wasmFile).size !== 1) fail(`expected one import module, found ${[...modules(wasmFile)]}`);

const shortened = `${wasmFile}.short`;
const mapping = JSON.parse(
  execFileSync(
    wasmOpt,
    [
      '--minify-imports-and-exports-and-modules',
      '--enable-bulk-memory', '--enable-nontrapping-float-to-int', '--enable-sign-ext',
      '--enable-reference-types', '--enable-multivalue', '--enable-mutable-globals',
      wasmFile, '-o', shortened,
    ],
    { encoding: 'utf8', maxBuffer: 64 << 20 },
  ),
);
const after = [...modules(shortened)];
if (after.length !== 1) fail(`expected one import module after renaming, found ${after}`);

// Every name as a whole word: not inside a longer one (identifiers may hold `$`).
const escape = (s) => s.replace(/[$]/g, '\\$');
const edge = '(?![\\w$])';
let js = readFileSync(jsFile, 'utf8');
const replaceOnce = (pattern, by, what) => {
  let count = 0;
  js = js.replace(pattern, () => {
    count += 1;
    return by;
  });
  if (count !== 1) fail(`${what}: found ${count} times in ${jsFile}, expected once`);
};

// Imports are the keys of the object wasm-bindgen hands to the instance.
for (const [module, name, short] of mapping.imports) {
  if (module !== before) fail(`import ${name} from unexpected module ${module}`);
  replaceOnce(new RegExp(`(?<![\\w$.])${escape(name)}${edge}(?=\\s*:)`, 'g'), short, `import ${name}`);
}
replaceOnce(new RegExp(`"${before.replace(/[./]/g, '\\$&')}"(?=\\s*:)`, 'g'), JSON.stringify(after[0]), `module "${before}"`);
// Exports are read only as `wasm.<name>` (an export the glue never reads is left alone).
for (const [name, short] of mapping.exports) {
  js = js.replace(new RegExp(`(?<=\\bwasm\\.)${escape(name)}${edge}`, 'g'), short);
}
// Whatever the glue still reads must now have its short name, except the exports of server_fn's
// stream classes, which build-site removes (Duet has no server functions: they are never called).
const shorts = new Set(mapping.exports.map(([, short]) => short));
for (const [, name] of js.matchAll(/\bwasm\.([\w$]+)/g)) {
  if (!shorts.has(name) && !/^(__wbg_)?intounderlying/.test(name)) fail(`the glue reads wasm.${name}, which was not renamed`);
}

writeFileSync(jsFile, js);
renameSync(shortened, wasmFile);
