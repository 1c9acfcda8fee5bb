// Writes .br and .gz copies of every .js, .wasm and .css file in a folder, so the server can send
// them precompressed at the highest levels without compressing on each request.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

const dir = process.argv[2];
for (const name of readdirSync(dir)) {
  if (!/\.(js|wasm|css)$/.test(name)) continue;
  const file = path.join(dir, name);
  const data = readFileSync(file);
  writeFileSync(`${file}.br`, zlib.brotliCompressSync(data, {
    params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length },
  }));
  writeFileSync(`${file}.gz`, zlib.gzipSync(data, { level: 9 }));
}
