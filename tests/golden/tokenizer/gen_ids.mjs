// Writes <name>.golden.jsonl for each reference tokenizer: the ids Hugging Face's tokenizers (the
// Rust library, through its official Node binding `tokenizers`) gives for every text of
// corpus.jsonl, and its decoding of those ids. Texts are decoded from their raw bytes as Python's
// bytes.decode("utf-8", errors="replace") does (TextDecoder, non-fatal, is the same algorithm).
//
// First line of each file: {"reference": ..., "files": {corpus file: {count, fnv1a64}}} — the whole
// corpus files encoded at once, compared by id count and FNV-1a-64 over the ids as little-endian u32.
// Then one line per corpus text: {"name", "ids", "ids_no_special"?, "decoded", "decoded_skip"?}.
//
//   node gen_ids.mjs DATA_DIR
// DATA_DIR: the test data as the tests read it — <build>/tests/data, which CMake fills from
// tests/data (see tests/data/README.md): tokenizers/, corpora/ (slices), models/tiny-qwen2-wp/.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Tokenizer } = require('tokenizers');
const version = require('tokenizers/package.json').version;

const here = path.dirname(fileURLToPath(import.meta.url));
if (process.argv.length !== 3) {
  console.error('usage: node gen_ids.mjs DATA_DIR   (e.g. build/tests/data)');
  process.exit(2);
}
const data = process.argv[2];

// What transformers' Qwen2Tokenizer builds from the slow files (vocab.json + merges.txt +
// tokenizer_config.json): NFC, the Qwen split regex, byte-level BPE, every added_tokens_decoder entry.
function qwen2SlowTokenizerJson(dir) {
  const vocab = JSON.parse(fs.readFileSync(path.join(dir, 'vocab.json'), 'utf8'));
  const merges = fs.readFileSync(path.join(dir, 'merges.txt'), 'utf8').split('\n')
    .filter((l, i) => l.length > 0 && !(i === 0 && l.startsWith('#version')));
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
  const added = Object.entries(config.added_tokens_decoder ?? {}).map(([id, t]) => ({ id: Number(id), ...t }));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  return JSON.stringify({
    version: '1.0', truncation: null, padding: null, added_tokens: added,
    normalizer: { type: 'NFC' },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [
      { type: 'Split', behavior: 'Isolated', invert: false, pattern: { Regex:
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" } },
      byteLevel] },
    post_processor: byteLevel, decoder: byteLevel,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
      fuse_unk: false, byte_fallback: false, vocab, merges },
  });
}

const tokenizers = {
  'qwen2': () => Tokenizer.fromFile(path.join(data, 'tokenizers/qwen2/tokenizer.json')),
  'qwen2.5-slow': () => Tokenizer.fromString(qwen2SlowTokenizerJson(path.join(data, 'tokenizers/qwen2.5'))),
  'tiny-qwen2-wp': () => Tokenizer.fromFile(path.join(data, 'models/tiny-qwen2-wp/model/tokenizer.json')),
};
// Llama 2's tokenizer.json as transformers converts tokenizer.model (made on the GPU machine by
// device_golden.py); used only when present.
const llamaJson = path.join(here, 'llama2-hf/tokenizer.json');
if (fs.existsSync(llamaJson)) tokenizers['llama2-hf-json'] = () => Tokenizer.fromFile(llamaJson);

const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
const corpus = fs.readFileSync(path.join(here, 'corpus.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const wholeFiles = [
  ...fs.readdirSync(path.join(data, 'corpora')).filter((f) => f.endsWith('.txt')).sort()
    .map((f) => ['corpora/' + f, path.join(data, 'corpora', f)]),
  ['models/tiny-qwen2-wp/heldout.txt', path.join(data, 'models/tiny-qwen2-wp/heldout.txt')],
];

function fnv1a64(ids) {
  let h = 0xcbf29ce484222325n;
  const prime = 0x100000001b3n;
  for (const id of ids) {
    for (let k = 0; k < 4; k++) {
      h ^= BigInt((id >>> (8 * k)) & 0xff);
      h = (h * prime) & 0xffffffffffffffffn;
    }
  }
  return h.toString(16).padStart(16, '0');
}

const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

// Variants (variants.json): a base tokenizer.json with top-level fields replaced ("patch") and added
// tokens appended ("add_tokens"), covering each pre-tokenizer behaviour, normalizer and added-token
// flag. Golden rows for the hostile and invalid texts and a few corpus samples, matched by name.
const bases = {
  tiny: path.join(data, 'models/tiny-qwen2-wp/model/tokenizer.json'),
  llama: path.join(here, 'llama2-hf/tokenizer.json'),
};
function variantJson(variant, readBase) {
  const doc = JSON.parse(readBase(variant.base));
  Object.assign(doc, variant.patch ?? {});
  doc.added_tokens = [...doc.added_tokens, ...(variant.add_tokens ?? [])];
  return JSON.stringify(doc);
}
const variants = JSON.parse(fs.readFileSync(path.join(here, 'variants.json'), 'utf8'));
const variantRows = corpus.filter((r) => !r.name.includes('.txt#') || /#[0-2]@/.test(r.name));
const variantLines = [];
for (const v of variants) {
  if (!fs.existsSync(bases[v.base])) continue;
  const tok = Tokenizer.fromString(variantJson(v, (b) => fs.readFileSync(bases[b], 'utf8')));
  for (const { name: textName, b64 } of variantRows) {
    const text = decoder.decode(Buffer.from(b64, 'base64'));
    const ids = (await tok.encode(text, null, { addSpecialTokens: true })).getIds();
    const plain = (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
    const row = { variant: v.name, name: textName, ids };
    if (!same(ids, plain)) row.ids_no_special = plain;
    row.decoded = await tok.decode(ids, false);
    const skipped = await tok.decode(ids, true);
    if (skipped !== row.decoded) row.decoded_skip = skipped;
    variantLines.push(JSON.stringify(row));
  }
}
fs.writeFileSync(path.join(here, 'variants.golden.jsonl'), variantLines.join('\n') + '\n');
console.log(`variants.golden.jsonl: ${variants.length} variants x ${variantRows.length} texts`);
if (process.env.ONLY_VARIANTS) process.exit(0);

for (const [name, make] of Object.entries(tokenizers)) {
  const tok = make();
  const files = {};
  for (const [key, file] of wholeFiles) {
    const enc = await tok.encode(decoder.decode(fs.readFileSync(file)), null, { addSpecialTokens: false });
    files[key] = { count: enc.getIds().length, fnv1a64: fnv1a64(enc.getIds()) };
  }
  const lines = [JSON.stringify({ reference: `tokenizers (Rust) ${version} via its Node binding`, files })];
  for (const { name: textName, b64 } of corpus) {
    const text = decoder.decode(Buffer.from(b64, 'base64'));
    const ids = (await tok.encode(text, null, { addSpecialTokens: true })).getIds();
    const plain = (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
    const row = { name: textName, ids };
    if (!same(ids, plain)) row.ids_no_special = plain;
    row.decoded = await tok.decode(ids, false);
    const skipped = await tok.decode(ids, true);
    if (skipped !== row.decoded) row.decoded_skip = skipped;
    lines.push(JSON.stringify(row));
  }
  fs.writeFileSync(path.join(here, `${name}.golden.jsonl`), lines.join('\n') + '\n');
  console.log(`${name}.golden.jsonl: ${corpus.length} texts; whole files ${JSON.stringify(files)}`);
}
