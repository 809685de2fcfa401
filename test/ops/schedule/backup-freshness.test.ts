import { describe, expect, it } from 'vitest';
import type { BackupEntry, VerificationRecord } from '../../../src/ops/backup/backup-target.js';
import type { BackupManifest } from '../../../src/ops/backup/manifest.js';
import { freshnessVerdict } from '../../../src/ops/schedule/backup-freshness.js';

const now = new Date('2026-11-22T12:00:00Z');
const hoursAgo = (hours: number) => new Date(now.getTime() - hours * 3_600_000);
// The verdict reads only whether a manifest is there, not what it says.
const manifest = {} as BackupManifest;
const passed = (mode: 'quick' | 'full'): VerificationRecord => ({
  backupId: 'x',
  mode,
  ok: true,
  verifiedAt: now.toISOString(),
  durationMs: 1,
  appVersion: '0',
  problems: [],
});

const entries: BackupEntry[] = [
  { id: 'a-verified', createdAt: hoursAgo(30), manifest, verification: passed('full') },
  { id: 'b-quick-only', createdAt: hoursAgo(10), manifest, verification: passed('quick') },
  { id: 'c-corrupt', createdAt: hoursAgo(1), problem: 'manifest.json: checksum mismatch' },
];
const check = { maxAgeMs: 26 * 3_600_000, maxAgeText: '26h', targetUrl: 'file:/backups' };

describe('freshnessVerdict', () => {
  it('judges the newest complete backup, skipping one without a sound manifest', () => {
    const verdict = freshnessVerdict(entries, now, { ...check, verified: false });
    expect(verdict).toMatchObject({ ok: true, backups: 2, problem: undefined });
    expect(verdict.subject?.id).toBe('b-quick-only');
  });

  it('with verified, counts only a passed full verify, and says what to run when it is too old', () => {
    const verdict = freshnessVerdict(entries, now, { ...check, verified: true });
    expect(verdict.ok).toBe(false);
    expect(verdict.subject?.id).toBe('a-verified');
    expect(verdict.problem?.code).toBe('backup_stale');
    expect(verdict.problem?.message).toContain('(a-verified) is 1d 6h old, older than 26h');
    expect(verdict.problem?.message).toContain("'athanor backup verify'");
  });

  it('with no backup at all names the target and how to take one', () => {
    const verdict = freshnessVerdict([], now, { ...check, verified: false });
    expect(verdict.ok).toBe(false);
    expect(verdict.problem?.message).toContain(
      "there is no complete backup at file:/backups: take one now with 'athanor backup create'",
    );
  });
});
