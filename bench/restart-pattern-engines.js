// Linear-time regular expression engines side by side on the restart-policy workload: the
// native `re2` addon (compiled with node-gyp on install), `re2js` (pure JavaScript) and
// `re2-wasm` (RE2 compiled to WebAssembly). Each engine is used when it can be imported, so the
// script runs where only some are installed; figures from one run are in bench/README.md.
// `node bench/restart-pattern-engines.js`. Writes bench/results/restart-pattern-engines.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

function optional(name) {
  try {
    return require(name);
  } catch {
    return undefined;
  }
}

// Each engine as the matcher thread uses one: compile a pattern once, then test failure texts.
const engines = [];
const native = optional('re2');
if (native) engines.push({ name: 're2 (native)', compile: (p) => new native(p), test: (e, t) => e.test(t) });
const re2js = optional('re2js');
if (re2js) {
  engines.push({ name: 're2js', compile: (p) => re2js.RE2JS.compile(p), test: (e, t) => e.test(t) });
}
const wasm = optional('re2-wasm');
if (wasm) engines.push({ name: 're2-wasm', compile: (p) => new wasm.RE2(p, 'u'), test: (e, t) => e.test(t) });
if (engines.length === 0) throw new Error('none of re2, re2js, re2-wasm can be imported');

function timeMs(fn, budgetMs = 300) {
  fn();
  let repeat = 0;
  const started = process.hrtime.bigint();
  let elapsed = 0;
  do {
    fn();
    repeat++;
    elapsed = Number(process.hrtime.bigint() - started) / 1e6;
  } while (elapsed < budgetMs && repeat < 10_000);
  return elapsed / repeat;
}

const kib64 = 64 * 1024;
const logLine = (i) =>
  `2026-12-02T10:00:${String(i % 60).padStart(2, '0')}Z step ${i} ok: wrote 4096 bytes\n`;
const failureLog = (bytes) => {
  let text = '';
  for (let i = 0; text.length < bytes; i++) text += logLine(i);
  return `${text.slice(0, bytes - 40)}\nRuntimeError: CUDA out of memory\n`;
};
// A network's restart policies: a handful of what operators write.
const policies = [
  '(?i)cuda out of memory',
  'connection (reset|refused)',
  '^Traceback',
  '(?m)^Killed$',
  'exit code (137|139)',
  'No space left on device',
  'Timeout(Error)?: .{0,80}exceeded',
  '(?i)temporar(y|ily) unavailable',
];
let seed = 1;
const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
const randomAb = Array.from({ length: kib64 }, () => (random() < 0.5 ? 'a' : 'b')).join('');

const cases = [
  { name: '8 policies, compile', patterns: policies, compileOnly: true },
  { name: '8 policies vs 1 KiB failure text', patterns: policies, text: failureLog(1024) },
  { name: '8 policies vs 64 KiB failure text', patterns: policies, text: failureLog(kib64) },
  { name: "(a+)+$ vs 40 a + '!'", patterns: ['(a+)+$'], text: `${'a'.repeat(40)}!` },
  { name: "(a+)+$ vs 64 KiB a + '!'", patterns: ['(a+)+$'], text: `${'a'.repeat(kib64)}!` },
  { name: '(a|aa)*b vs 64 KiB of a', patterns: ['(a|aa)*b'], text: 'a'.repeat(kib64) },
  { name: '[ab]*a[ab]{20}c vs 64 KiB random a/b', patterns: ['[ab]*a[ab]{20}c'], text: randomAb },
  // An early c stops the engines skipping the text for a literal it lacks: the DFA must run.
  {
    name: '[ab]*a[ab]{20}c vs 64 KiB a/b, early c',
    patterns: ['[ab]*a[ab]{20}c'],
    text: `${randomAb.slice(0, 10)}c${randomAb.slice(11)}`,
  },
  {
    name: '1000-char pattern vs 64 KiB of a',
    patterns: [`(${'x|'.repeat(330)}a)*b`],
    text: 'a'.repeat(kib64),
  },
];

const rows = [];
for (const c of cases) {
  const row = { case: c.name };
  for (const engine of engines) {
    if (c.compileOnly) {
      row[engine.name] = timeMs(() => c.patterns.map((p) => engine.compile(p)));
      continue;
    }
    const compiled = c.patterns.map((p) => engine.compile(p));
    const matched = compiled.filter((e) => engine.test(e, c.text)).length;
    row[engine.name] = timeMs(() => compiled.forEach((e) => engine.test(e, c.text)));
    row[`${engine.name} matched`] = matched;
  }
  rows.push(row);
}

const out = path.join(import.meta.dirname, 'results');
mkdirSync(out, { recursive: true });
writeFileSync(
  path.join(out, 'restart-pattern-engines.json'),
  JSON.stringify(
    { node: process.version, at: new Date().toISOString(), engines: engines.map((e) => e.name), rows },
    null,
    2,
  ),
);
console.log(['case'.padEnd(40), ...engines.map((e) => `${e.name} ms`.padStart(18))].join(''));
for (const row of rows) {
  console.log([row.case.padEnd(40), ...engines.map((e) => row[e.name].toFixed(3).padStart(18))].join(''));
}
