// The same measurements as tokenizer_bench, for Hugging Face's tokenizers (the Rust library through
// its Node binding, installed by tests/golden/tokenizer's npm project). Run it on one core:
//   RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false taskset -c 1 node hf_tokenizers_bench.mjs [TOKENIZER_JSON [TEXT_FILE [REPEATS]]]
// Defaults, as tokenizer_bench's: build/tests/data (the test data CMake unpacks; tests/data/README.md).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.resolve(here, '../../tests/golden/tokenizer/package.json'));
const { Tokenizer } = require('tokenizers');
const version = require('tokenizers/package.json').version;

const data = path.resolve(here, '../../build/tests/data');
const jsonPath = process.argv[2] ?? path.join(data, 'tokenizers/qwen2/tokenizer.json');
const textPath = process.argv[3] ?? path.join(data, 'corpora/war-and-peace.head.txt');
const repeats = Number(process.argv[4] ?? 5);

const text = fs.readFileSync(textPath, 'utf8');
const bytes = Buffer.byteLength(text, 'utf8');
const lines = text.split('\n').map((l) => l + '\n');
if (text.endsWith('\n')) lines.pop();

let t = performance.now();
const tok = Tokenizer.fromFile(jsonPath);
console.log(`tokenizers ${version} (Rust, Node binding); model: ${jsonPath} (loaded in ${((performance.now() - t) / 1000).toFixed(2)} s)`);
console.log(`text: ${textPath} (${bytes} bytes, ${lines.length} lines)\n`);
const row = (what, tokens, s) =>
  console.log(`| ${what.padEnd(34)} | ${(bytes / s / 1e6).toFixed(1).padStart(10)} | ${String(tokens).padStart(9)} | ${s.toFixed(3).padStart(8)} |`);
console.log(`| ${'encode'.padEnd(34)} | ${'MB/s'.padStart(10)} | ${'tokens'.padStart(9)} | ${'seconds'.padStart(8)} |`);
console.log(`|${'-'.repeat(36)}|${'-'.repeat(12)}|${'-'.repeat(11)}|${'-'.repeat(10)}|`);

t = performance.now();
let enc = await tok.encode(text, null, { addSpecialTokens: false });
row('whole file, first call (cold cache)', enc.getIds().length, (performance.now() - t) / 1000);
let best = Infinity;
for (let r = 0; r < repeats; r++) {
  t = performance.now();
  enc = await tok.encode(text, null, { addSpecialTokens: false });
  best = Math.min(best, (performance.now() - t) / 1000);
}
row('whole file, warm (best of repeats)', enc.getIds().length, best);
best = Infinity;
let tokens = 0;
for (let r = 0; r < repeats; r++) {
  tokens = 0;
  t = performance.now();
  for (const line of lines) tokens += (await tok.encode(line, null, { addSpecialTokens: false })).getIds().length;
  best = Math.min(best, (performance.now() - t) / 1000);
}
row('one call per line (best of repeats)', tokens, best);
