#!/usr/bin/env bash
# usage: measure.sh LABEL [extra wasm-opt flags...]   (env: CARGO_PROFILE_* overrides, FEATURES)
set -euo pipefail
label=$1; shift
cd /work/wt-size
tools=$PWD/end2end/node_modules/.bin
export LEPTOS_OUTPUT_NAME=duet
out=/tmp/sz/$label; rm -rf $out; mkdir -p $out
if [ -z "${SKIP_CARGO:-}" ]; then
cargo build ${LOCKFLAG---locked} --profile wasm-release -p client --lib --target wasm32-unknown-unknown \
  --no-default-features --features "${FEATURES:-hydrate}" 2>&1 | tail -2
fi
cp target/wasm32-unknown-unknown/wasm-release/client.wasm $out/client.wasm
wasm-bindgen --target web --no-typescript --out-dir $out --out-name duet $out/client.wasm
wflags=${WOPT:-"-Oz"}
$tools/wasm-opt $wflags --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-reference-types --enable-multivalue --enable-mutable-globals "$@" \
  $out/duet_bg.wasm -o $out/duet.wasm
node -e '
const z=require("zlib"),fs=require("fs");const d=process.argv[1];
const br=f=>z.brotliCompressSync(fs.readFileSync(f),{params:{[z.constants.BROTLI_PARAM_QUALITY]:11,[z.constants.BROTLI_PARAM_SIZE_HINT]:fs.statSync(f).size}}).length;
const w=br(d+"/duet.wasm"),j=br(d+"/duet.js");
console.log(`RESULT ${process.argv[2]}: wasm ${fs.statSync(d+"/duet.wasm").size} raw ${w} br; js ${fs.statSync(d+"/duet.js").size} raw ${j} br; total br ${w+j}`)' $out $label | tee -a /tmp/sz/results.txt
