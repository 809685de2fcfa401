// `npm run bench -- python`: the Python client against the CLI, in the same run on one server.
// Downloads every result of a network of BENCH_PY_SMALL (default 10000) small results, and of one
// network holding a single BENCH_PY_LARGE_MB (default 200) MB result, with `athanor result
// download --no-cache` and with `Client.download_results(cache_dir=False)`; then submits a network
// of BENCH_PY_TRANSFORMATIONS (default 10000) transformations with `athanor network submit` and
// with `Client.submit_network`. Each is its own process, timed with its peak RSS by GNU time; the
// two take turns, BENCH_PY_ROUNDS (default 3) times. Prints medians and each Python median as a
// ratio to the CLI's; writes bench/results/python-client-<time>.json.
// BENCH_PYTHON: a python with athanor-client installed (default: the test suite's venv, else one
// built under node_modules/.cache/athanor-python/bench).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ComputeClient } from '../dist/client/index.js';
import { resolveConfig } from '../dist/config/resolve-config.js';
import { benchCompute, benchUser, startBenchServer } from './athanor-server.js';

const small = Number(process.env.BENCH_PY_SMALL ?? 10_000);
const largeMb = Number(process.env.BENCH_PY_LARGE_MB ?? 200);
const transformations = Number(process.env.BENCH_PY_TRANSFORMATIONS ?? 10_000);
const rounds = Number(process.env.BENCH_PY_ROUNDS ?? 3);
const repo = path.resolve(import.meta.dirname, '..');
const cli = path.join(repo, 'dist', 'cli', 'main.js');
const root = mkdtempSync(path.join(os.tmpdir(), 'athanor-bench-python-'));
const started = Date.now();
const log = (line) => process.stderr.write(`${((Date.now() - started) / 1000).toFixed(0)}s ${line}\n`);

function benchPython() {
  if (process.env.BENCH_PYTHON) return process.env.BENCH_PYTHON;
  const cache = path.join(repo, 'node_modules', '.cache', 'athanor-python');
  const ready = existsSync(cache)
    ? readdirSync(cache).find(
        (d) => d.startsWith('venv-') && existsSync(path.join(cache, d, 'athanor-ready')),
      )
    : undefined;
  const venv = ready ? path.join(cache, ready) : path.join(cache, 'bench');
  const python = path.join(venv, 'bin', 'python');
  if (!ready && !existsSync(path.join(venv, 'athanor-ready'))) {
    log(`building a virtual environment in ${venv}`);
    execFileSync('python3', ['-m', 'venv', venv], { stdio: 'inherit' });
    execFileSync(
      python,
      ['-m', 'pip', 'install', '--quiet', 'hatchling', `${path.join(repo, 'python')}[all]`],
      {
        stdio: 'inherit',
      },
    );
    writeFileSync(path.join(venv, 'athanor-ready'), '');
  }
  // The package as it is in this checkout.
  execFileSync(
    python,
    [
      '-m',
      'pip',
      'install',
      '--quiet',
      '--no-deps',
      '--no-build-isolation',
      '--no-index',
      '--force-reinstall',
      path.join(repo, 'python'),
    ],
    { stdio: 'inherit' },
  );
  return python;
}

const python = benchPython();
const dataDir = path.join(root, 'data');
const config = {
  ...resolveConfig({ databaseUrl: `sqlite:${path.join(root, 'athanor.db')}`, dataDir }, {}),
  tokenRateLimit: 100_000,
};
const server = await startBenchServer(config, { backgroundCheckpoints: true });
const { user, url } = server;
const compute = new ComputeClient({ url, ...benchCompute });
const env = {
  ...process.env,
  ATHANOR_URL: url,
  ATHANOR_ID: benchUser.identifier,
  ATHANOR_KEY: benchUser.key,
};

/** A network whose every task completed with the result `bytesOf(i)` gives. */
async function networkWithResults(name, count, bytesOf) {
  const submitted = await user.submitNetwork({
    scope: 'bench-python-results',
    name,
    transformations: Array.from({ length: count }, (_, i) => ({
      name: `t${i}`,
      protocol: 'echo',
      inputs: { i, name },
    })),
  });
  const index = new Map(submitted.transformations.map((key, i) => [key, i]));
  const tasks = [];
  for (let i = 0; i < submitted.transformations.length; i += 50) {
    const made = await Promise.all(
      submitted.transformations.slice(i, i + 50).map((t) => user.createTasks(t)),
    );
    tasks.push(...made.map(([t]) => t.id));
  }
  for (let i = 0; i < tasks.length; i += 1000)
    await user.actionTasks(submitted.key, tasks.slice(i, i + 1000));
  const { id } = await compute.register(`bench-${name}`);
  for (let done = 0; done < count;) {
    const claims = await compute.claim(id, { count: 1000 });
    done += claims.length;
    for (let i = 0; i < claims.length; i += 32) {
      await Promise.all(
        claims
          .slice(i, i + 32)
          .map((c) =>
            compute.submitResult(c.task, c.leaseToken, 'ok', bytesOf(index.get(c.transformation.key))),
          ),
      );
    }
  }
  return submitted.key;
}

/** Runs a command under GNU time: wall seconds, peak RSS in MiB, CPU seconds. Never spawnSync: the
 * server answering it runs in this process. */
function measured(argv) {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', '@@ %e %M %U %S', ...argv], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${argv.join(' ')} exited ${code}: ${stderr}`));
      const line = stderr.split('\n').find((l) => l.startsWith('@@ '));
      const [wall, rssKb, userS, sysS] = line.slice(3).split(' ').map(Number);
      resolve({ wallS: wall, peakRssMiB: rssKb / 1024, cpuS: userS + sysS });
    });
  });
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function compare(label, cliArgv, pythonCode, before = () => {}) {
  const runs = { cli: [], python: [] };
  for (let round = 0; round < rounds; round++) {
    // Alternate which goes first, so neither always meets a warmer server.
    const order = round % 2 === 0 ? ['cli', 'python'] : ['python', 'cli'];
    for (const who of order) {
      before(who, round);
      runs[who].push(
        await (who === 'cli'
          ? measured([process.execPath, cli, ...cliArgv(round)])
          : measured([python, '-c', pythonCode(round)])),
      );
    }
  }
  const summary = {};
  for (const who of ['cli', 'python']) {
    summary[who] = {
      wallS: median(runs[who].map((r) => r.wallS)),
      peakRssMiB: median(runs[who].map((r) => r.peakRssMiB)),
      cpuS: median(runs[who].map((r) => r.cpuS)),
    };
  }
  summary.timeRatio = summary.python.wallS / summary.cli.wallS;
  summary.memoryRatio = summary.python.peakRssMiB / summary.cli.peakRssMiB;
  log(
    `${label}: CLI ${summary.cli.wallS} s ${summary.cli.peakRssMiB.toFixed(0)} MiB, Python ${summary.python.wallS} s ${summary.python.peakRssMiB.toFixed(0)} MiB (×${summary.timeRatio.toFixed(2)})`,
  );
  return { label, runs, ...summary };
}

try {
  log(`making ${small} small results`);
  const manyNetwork = await networkWithResults('many', small, (i) =>
    Buffer.from(JSON.stringify({ i, energy: -i / 7, payload: 'x'.repeat(i % 200) })),
  );
  log(`making one ${largeMb} MB result`);
  const largeBytes = largeMb * 1024 * 1024;
  const largeNetwork = await networkWithResults('large', 1, () =>
    Readable.from(
      (function* () {
        const chunk = Buffer.alloc(1024 * 1024);
        for (let sent = 0; sent < largeBytes; sent += chunk.length) {
          chunk.writeUInt32LE(sent >>> 20, 0);
          yield Buffer.from(chunk.subarray(0, Math.min(chunk.length, largeBytes - sent)));
        }
      })(),
    ),
  );
  const folder = (label, who, round) => path.join(root, `${label}-${who}-${round}`);
  const clean = (label) => (who, round) =>
    rmSync(folder(label, who, round), { recursive: true, force: true });
  const download = (label, network) =>
    compare(
      `download_results, ${label}`,
      (round) => [
        'result',
        'download',
        '--network',
        network,
        folder(label, 'cli', round),
        '--no-cache',
        '--json',
      ],
      (round) =>
        `from athanor import Client; Client().download_results(${JSON.stringify(network)}, ${JSON.stringify(folder(label, 'python', round))}, cache_dir=False)`,
      clean(label),
    );
  const results = [
    await download(`${small} small results`, manyNetwork),
    await download(`one ${largeMb} MB result`, largeNetwork),
  ];

  const networkFile = (who, round) => {
    const file = path.join(root, `network-${who}-${round}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        name: `submit-${who}-${round}`,
        transformations: Array.from({ length: transformations }, (_, i) => ({
          name: `t${i}`,
          protocol: 'echo',
          inputs: { i, who, round, mass: i * 1.5 },
        })),
      }),
    );
    return file;
  };
  const files = {};
  for (let round = 0; round < rounds; round++)
    for (const who of ['cli', 'python']) files[`${who}-${round}`] = networkFile(who, round);
  results.push(
    await compare(
      `submit_network, ${transformations} transformations`,
      (round) => ['network', 'submit', files[`cli-${round}`], '-s', `bench-submit-cli${round}`, '--json'],
      (round) =>
        `from athanor import Client; Client().submit_network(${JSON.stringify(files[`python-${round}`])}, scope="bench-submit-py${round}")`,
    ),
  );

  const pythonVersion = spawnSync(python, ['--version'], { encoding: 'utf8' }).stdout.trim();
  const report = {
    benchmark: 'python-client',
    at: new Date().toISOString(),
    node: process.version,
    python: pythonVersion,
    cpus: os.cpus().length,
    loadAverage: os.loadavg(),
    rounds,
    results,
  };
  const dir = path.join(import.meta.dirname, 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `python-client-${report.at.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(
    `\n| measured (median of ${rounds}) | CLI | Python | Python ÷ CLI (time) |\n| --- | --- | --- | --- |\n` +
      results
        .map(
          (r) =>
            `| ${r.label} | ${r.cli.wallS.toFixed(2)} s, ${r.cli.peakRssMiB.toFixed(0)} MiB | ` +
            `${r.python.wallS.toFixed(2)} s, ${r.python.peakRssMiB.toFixed(0)} MiB | ${r.timeRatio.toFixed(2)} |`,
        )
        .join('\n') +
      `\n\n${file}\n`,
  );
} finally {
  await server.app.close();
  await server.store.close();
  rmSync(root, { recursive: true, force: true });
}
