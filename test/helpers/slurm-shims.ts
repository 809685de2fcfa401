import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from './backends.js';

/**
 * `sbatch`, `squeue` and `scancel` stand-ins on a PATH directory: sbatch runs the job script
 * detached (its own session, as slurmd would) and answers a job id as `--parsable` does; squeue
 * prints the jobs whose process runs in the format asked for by the driver; scancel sends SIGTERM.
 * They take the same argv and stdin as the real tools, so the driver's argv and parsing are tested.
 * With a file `fail` in the state directory, sbatch refuses as Slurm does, exit 1.
 */
export function slurmShims(): { bin: string; state: string; env: Record<string, string> } {
  const bin = tempDir('athanor-slurm-bin-');
  const state = path.join(tempDir('athanor-slurm-state-'), 'jobs');
  mkdirSync(state, { recursive: true });
  const write = (name: string, text: string) => writeFileSync(path.join(bin, name), text, { mode: 0o755 });
  write(
    'sbatch',
    `#!/bin/bash
state="$SLURM_SHIM_STATE"
echo "$*" >> "$state/sbatch.calls"
[ "$1" = "--parsable" ] || { echo "sbatch: expected --parsable first" >&2; exit 2; }
name=""
for a in "$@"; do case "$a" in --job-name=*) name="\${a#--job-name=}";; esac; done
if [ -f "$state/fail" ]; then echo "sbatch: error: Batch job submission failed: $(cat "$state/fail")" >&2; exit 1; fi
id=$(( $(cat "$state/next" 2>/dev/null || echo 100) + 1 )); echo $id > "$state/next"
cat > "$state/$id.sh"
head -1 "$state/$id.sh" | grep -q '^#!' || { echo "sbatch: error: This does not look like a batch script" >&2; exit 1; }
echo "$name" > "$state/$id.name"
date +%Y-%m-%dT%H:%M:%S > "$state/$id.start"
SLURM_JOB_ID=$id setsid bash "$state/$id.sh" > "$state/$id.out" 2>&1 < /dev/null &
echo $! > "$state/$id.pid"
echo "$id"
`,
  );
  write(
    'squeue',
    `#!/bin/bash
state="$SLURM_SHIM_STATE"
echo "$*" >> "$state/squeue.calls"
[ "$*" = "-h --me -o %i|%j|%T|%S|%V" ] || { echo "squeue: unexpected arguments: $*" >&2; exit 2; }
for pidfile in "$state"/*.pid; do
  [ -e "$pidfile" ] || continue
  id=$(basename "$pidfile" .pid)
  if kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "$id|$(cat "$state/$id.name")|RUNNING|$(cat "$state/$id.start")|$(cat "$state/$id.start")"
  fi
done
`,
  );
  write(
    'scancel',
    `#!/bin/bash
state="$SLURM_SHIM_STATE"
echo "$*" >> "$state/scancel.calls"
[ -f "$state/$1.pid" ] || { echo "scancel: error: Invalid job id $1" >&2; exit 1; }
kill -TERM "$(cat "$state/$1.pid")" 2>/dev/null
exit 0
`,
  );
  return { bin, state, env: { PATH: `${bin}:${process.env.PATH ?? ''}`, SLURM_SHIM_STATE: state } };
}
