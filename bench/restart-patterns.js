// Restart-pattern matching: RE2 (what the server uses) beside V8's backtracking RegExp (what it
// used before) on the pattern `(a+)+$` against n a's and a '!', and RE2's worst case within the
// limits (a 1000-character pattern against 64 KiB of failure text).
// `npm run build && node bench/restart-patterns.js`. Writes bench/results/restart-patterns.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { compileRestartPattern } from '../dist/service/restart-patterns.js';

function timeMs(fn, repeat = 1) {
  const started = process.hrtime.bigint();
  for (let i = 0; i < repeat; i++) fn();
  return Number(process.hrtime.bigint() - started) / 1e6 / repeat;
}

const rows = [];
for (const n of [20, 22, 24, 26, 40, 1000, 65536]) {
  const text = `${'a'.repeat(n)}!`;
  const re2 = compileRestartPattern('(a+)+$');
  const re2Ms = timeMs(() => re2.test(text), n < 1000 ? 100 : 10);
  // Backtracking doubles with each character: only the short texts finish in reasonable time.
  const v8Ms = n <= 26 ? timeMs(() => /(a+)+$/.test(text)) : null;
  rows.push({ case: `(a+)+$ vs ${n} a + '!'`, re2Ms, v8RegExpMs: v8Ms });
}
// Worst cases within the limits: a scan of all 64 KiB that fails at the end, and a pattern whose
// DFA would need millions of states (RE2 then falls back to its NFA, still linear).
const bigA = 'a'.repeat(64 * 1024);
const randomAb = Array.from({ length: 64 * 1024 }, () => (Math.random() < 0.5 ? 'a' : 'b')).join('');
for (const [pattern, text, label] of [
  ['(a|aa)*b', bigA, '64 KiB of a'],
  ['[ab]*a[ab]{20}c', randomAb, '64 KiB of random a/b'],
  [`(${'x|'.repeat(300)}a)*b`, bigA, '64 KiB of a'],
]) {
  const expression = compileRestartPattern(pattern);
  rows.push({
    case: `${pattern.length > 20 ? `${pattern.length}-char pattern` : pattern} vs ${label}`,
    re2Ms: timeMs(() => expression.test(text), 10),
    v8RegExpMs: null,
  });
}

const out = path.join(import.meta.dirname, 'results');
mkdirSync(out, { recursive: true });
writeFileSync(
  path.join(out, 'restart-patterns.json'),
  JSON.stringify({ node: process.version, at: new Date().toISOString(), rows }, null, 2),
);
console.log('case'.padEnd(40), 're2 ms'.padStart(10), 'RegExp ms'.padStart(12));
for (const row of rows) {
  console.log(
    row.case.padEnd(40),
    row.re2Ms.toFixed(3).padStart(10),
    (row.v8RegExpMs === null ? '-' : row.v8RegExpMs.toFixed(1)).padStart(12),
  );
}
