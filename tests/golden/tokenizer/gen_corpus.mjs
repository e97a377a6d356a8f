// Builds corpus.jsonl: the texts every tokenizer golden file is computed on.
// Each line is {"name": ..., "b64": base64 of the raw bytes}. Raw bytes (not JSON strings) because
// some texts are deliberately invalid UTF-8. Deterministic: same inputs give the same file.
//
//   node gen_corpus.mjs SHARED_DIR   (the project's reference material: assets/corpora/*.txt, whole)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
if (process.argv.length !== 3) {
  console.error('usage: node gen_corpus.mjs SHARED_DIR');
  process.exit(2);
}
const shared = process.argv[2];
const corporaDir = path.join(shared, 'assets/corpora');

// mulberry32: a tiny seeded PRNG so the samples never change between runs.
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rows = [];
const add = (name, bytes) => rows.push({ name, b64: Buffer.from(bytes).toString('base64') });
const addText = (name, text) => add(name, Buffer.from(text, 'utf8'));

// Samples of every corpus file: random offsets and lengths (in code points, so the samples are valid
// UTF-8; invalid UTF-8 is covered by the hostile strings below).
const files = fs.readdirSync(corporaDir).filter((f) => f.endsWith('.txt')).sort();
for (const file of files) {
  const chars = Array.from(fs.readFileSync(path.join(corporaDir, file), 'utf8'));
  const rand = prng(0x5eed + file.length * 7919 + chars.length);
  for (let i = 0; i < 30; i++) {
    const len = 1 + Math.floor(rand() ** 2 * 3000);
    const start = Math.floor(rand() * (chars.length - len));
    addText(`${file}#${i}@${start}+${len}`, chars.slice(start, start + len).join(''));
  }
}

// Hostile strings: whitespace runs, scripts, 4-byte UTF-8, combining marks, digits, contractions,
// special-token look-alikes, control characters.
const hostile = [
  '', ' ', '  ', '\t', '\n', '\r\n', '\r', '   \n\n\t \t  x', 'a  b   c    d', 'hello   ', '   hello',
  '\n\n\n', ' \n \n ', 'x\n  \ny', 'line1\r\nline2\r\n\r\n', 'tab\tsep\t\tvalues\t', ' '.repeat(100),
  '\u00a0', 'a\u00a0b', '\u3000全角\u3000', 'x\u2028y\u2029z', 'a\u0085b', 'a\u180eb', 'a\u200bb', '\u200d',
  '\ufeffhello', 'a\u2003\u2009b', '\u000b\u000c',
  '我爱北京天安门。', '日本語のテキストです。カタカナ', '한국어 텍스트입니다', 'Hello世界123', '中文，标点！“引号”',
  '😀😃🏳️‍🌈 👨‍👩‍👧‍👦', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛', '𠀀𠀁𪚥', 'emoji🎉at end🎉', '🤖', 'a😀b😀c',
  'e\u0301', 'Cafe\u0301 au lait', 'A\u030a', '\u1100\u1161\u11a8', 'Å', '\u0344', 'o\u0308\u0301',
  'ﬁ ﬂ ①② ™ ㎏', '\u00bd \u2153', 'ǅungla', 'K Kelvin', 'İstanbul ıi', 'Straße STRASSE', 'ΣΑΣ σας',
  '1234567890', '3.14159', '12,345,678.90', '٣٤٥ ۱۲۳', '１２３ＡＢＣ', 'v1.2.3-rc4', '0x1F 0b1010 1e-9',
  "I'm you're they've we'll he'd it's", "DON'T I'M THEY'LL", "'S 'T 'RE", "'ſ", "O'Neill's", 'it’s', "''''",
  "can't won't shan't", "rock 'n' roll", "'s", " 's", "x's's",
  '<|im_start|>user\nhi<|im_end|>', '<|endoftext|>', 'a<|im_start|>b', '<|im_start|><|im_end|>',
  '< |im_start| >', '<|im_start', 'im_end|>', '<s>hello</s>', '<unk>', ' <s> ', '[INST] hi [/INST]',
  '<tool_call>{"name": "f"}</tool_call>', '<|fim_prefix|>def<|fim_suffix|>ret<|fim_middle|>',
  '  <|im_end|>  ', '<|endoftext|><|endoftext|>', 'text<|endoftext|>\n\nmore',
  'def f(x):\n    return x**2  # comment\n', '{"key": [1, 2, {"a": null}]}', 'https://example.com/a?b=c&d=e#f',
  'fn main() { println!("{}", 1 + 2); }', '    indented\n\tmixed\n  \t  end', 'a = b == c != d <= e',
  'مرحبا بالعالم', 'שלום עולם', 'नमस्ते दुनिया', 'สวัสดีชาวโลก', 'Привет, мир!', 'Γειά σου Κόσμε', 'ქართული',
  'Tiếng Việt có dấu', 'ئۇيغۇرچە', 'ሰላም', '\u0915\u094d\u0937', 'x\u0301\u0301\u0301',
  'a'.repeat(1000), '1'.repeat(50), '!!!!!!!!', '\n'.repeat(30) + 'x', '...', '—–-', '«»‹›', '$$$ 100€ ¥200',
  '\u0000\u0001\u001f', '\u007f', 'a\u0000b', '\u{10ffff}', '\ue000', '\ufffd', '\ufffd\ufffd',
  'The quick brown fox jumps over the lazy dog.', 'HELLO World hElLo', 'snake_case and camelCase',
];
hostile.forEach((s, i) => addText(`hostile#${i}`, s));

// Invalid UTF-8: the reference sees these as Python's bytes.decode("utf-8", errors="replace") (= the
// WHATWG decoder) presents them; see the tokenizer header.
const invalid = [
  [0xff], [0xc3], [0xe2, 0x82], [0x61, 0x62, 0x63, 0x80, 0x64, 0x65, 0x66], [0xed, 0xa0, 0x80],
  [0xf0, 0x9f, 0x98], [0xc0, 0xaf], [0xf4, 0x90, 0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80],
  [...Buffer.from('hello'), 0xff, ...Buffer.from('world'), 0xfe], [0xe2, 0x82, 0x41], [0xf0, 0x9f, 0x98, 0x20, 0x41],
  [0xc3, 0xa9, 0xc3], [0x80, 0x80, 0x80], [0xe0, 0x80, 0x80], [0xef, 0xbf, 0xbe], [0xf5, 0x80],
  [...Buffer.from('<|im_start|>'), 0xff, ...Buffer.from('<|im_end|>')],
];
invalid.forEach((b, i) => add(`invalid#${i}`, b));

fs.writeFileSync(path.join(here, 'corpus.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
console.log(`corpus.jsonl: ${rows.length} texts`);
