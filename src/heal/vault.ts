// Where a heal attempt keeps what it may need to undo: a snapshot of its `touches` and of the
// protected zone, under state/snapshots/ATTEMPT/. The heal loop asks four questions of it — may
// these paths be touched, take the snapshot, did the zone change, put everything back.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { HomePaths } from '../config/paths.js';
import { leashFor, type Leash, type TidyOrder } from '../run/launch.js';
import { describeResult, runBounded } from '../notify/pager.js';
import {
  dropSnapshot,
  manifestDigest,
  manifestState,
  readManifest,
  restoreSnapshot,
  takeSnapshot,
  type RestoreResult,
} from './snapshot.js';
import type { Policy } from '../config/schema.js';
import { guardTouches, installRoot, protectedZone, type Guarded, type Zone } from '../config/zone.js';
import { diffZone, hashZone, installChanges, installState, zoneExclude, zoneRoots } from './zone.js';
import { errorMessage } from '../errors.js';
import type { FileChanges } from '../model.js';

const TOUCHES = 'touches';
const ZONE = 'zone';
/** A rollback of many large files takes a while; one that hangs longer is stopped and waits for a person. */
const RESTORE_TIMEOUT_MS = 30 * 60_000;
/** Listing what a fix changed only reads and hashes; the probe waits for it, so not for long. */
const FILES_TIMEOUT_MS = 5 * 60_000;
/** The worker's answer for files: three capped lists, their names escaped to ASCII (up to 6 characters each). */
const FILES_OUTPUT_MAX = 1 << 20;

/**
 * The sha256 of both manifests, kept in SQLite: the snapshot folder lies in state/, which a fix
 * could write to, so a manifest that no longer has its digest was tampered with.
 */
export interface SnapshotDigests {
  touches: string;
  zone: string;
}

export class HealVault {
  /** The zone as it was when each snapshot was taken: a policy edit mid-fix must not move the goalposts. */
  private readonly zones = new Map<string, Zone>();
  /** node_modules/ of the install as it was at each snapshot (this life only: an upgrade between lives is not a heal's doing). */
  private readonly installs = new Map<string, Map<string, string>>();

  constructor(
    private readonly paths: HomePaths,
    private readonly getPolicy: () => Policy,
    /** The daemon's leash (it refuses once the home was moved). */
    private readonly leash: () => Leash = () => leashFor(paths, getPolicy()),
    private readonly installDir: string = installRoot(),
  ) {}

  /** Whether a path belongs to the install (an upgrade changes those, not a heal). */
  inInstall(p: string): boolean {
    const root = resolve(this.installDir);
    return p === root || p.startsWith(`${root}/`);
  }

  zone(): Zone {
    return protectedZone(this.paths, this.getPolicy(), { installDir: this.installDir });
  }

  /** Every touches path resolved (realpath, no `..`) and outside the protected zone. */
  guard(touches: readonly string[]): Guarded {
    return guardTouches(touches, this.paths.home, this.zone());
  }

  /** Copies the touched paths and the protected zone (with their sha256 manifests). */
  async take(dir: string, touched: readonly string[]): Promise<SnapshotDigests> {
    const zone = this.zone();
    this.zones.set(dir, zone);
    this.installs.set(dir, await installState(this.installDir));
    await takeSnapshot(touched, join(dir, TOUCHES));
    await takeSnapshot(zoneRoots(zone), join(dir, ZONE), { exclude: zoneExclude(zone) });
    return { touches: manifestDigest(join(dir, TOUCHES))!, zone: manifestDigest(join(dir, ZONE))! };
  }

  /**
   * Paths of the protected zone that differ from the snapshot (empty: untouched), and files of the
   * install's node_modules/ (not copied, so not restorable: named, for a person).
   */
  async zoneChanges(dir: string, digests: SnapshotDigests | null): Promise<string[]> {
    const zone = await this.zoneDiff(dir, digests);
    const before = this.installs.get(dir);
    if (!before) return zone;
    const install = installChanges(before, await installState(this.installDir));
    return [...zone, ...install.map((p) => `${p} (the nightshift install; not restorable: reinstall nightshift)`)];
  }

  private async zoneDiff(dir: string, digests: SnapshotDigests | null): Promise<string[]> {
    const zdir = join(dir, ZONE);
    const digest = manifestDigest(zdir);
    // A snapshot on record whose manifest is gone or different was tampered with: that is a write
    // into the state folder, i.e. into the zone.
    if (digests && digest !== digests.zone)
      return [`${join(zdir, 'manifest.json')} (the zone's snapshot itself was ${digest === null ? 'deleted' : 'rewritten'})`];
    if (digest === null) return [];
    const manifest = readManifest(zdir)!;
    const zone = this.zones.get(dir) ?? this.zone();
    return diffZone(manifestState(manifest), await hashZone(zone));
  }

  /**
   * Puts the touched paths back byte-exact, and the zone too when it changed — each even if the
   * other fails. Idempotent (a crash during a restore is redone at the next start). Returns what
   * was done in plain words; throws when something could not be put back.
   */
  async restore(dir: string, digests: SnapshotDigests | null, opts: { zone?: boolean } = {}): Promise<string> {
    const parts: string[] = [];
    const errors: string[] = [];
    try {
      if (readManifest(join(dir, TOUCHES))) {
        parts.push(`touched paths: ${words(await this.restoreTouches(join(dir, TOUCHES), digests?.touches))}`);
      } else if (digests) {
        throw new Error(`the snapshot in ${join(dir, TOUCHES)} was deleted after it was taken; the touched paths cannot be put back`);
      } else parts.push('no complete snapshot of the touched paths, so the fix had not started');
    } catch (err) {
      errors.push(`touched paths: ${errorMessage(err)}`);
    }
    try {
      if (digests && manifestDigest(join(dir, ZONE)) === null) {
        throw new Error(
          `the zone's snapshot in ${join(dir, ZONE)} was deleted after it was taken; check jobs/, rules/ and protected/ by hand`,
        );
      }
      const changed = opts.zone === false ? [] : await this.zoneDiff(dir, null);
      if (changed.length) {
        const zone = this.zones.get(dir) ?? this.zone();
        parts.push(
          `protected zone: ${words(await restoreSnapshot(join(dir, ZONE), { exclude: zoneExclude(zone), expectDigest: digests?.zone }))}`,
        );
      }
    } catch (err) {
      errors.push(`protected zone: ${errorMessage(err)}`);
    }
    if (errors.length) throw new Error(errors.join('; '));
    return parts.join('; ');
  }

  /**
   * The touches are put back by a process of its own in a sandbox (restore-worker): a job may be
   * swapping a folder of them for a link while the rollback walks them, and the rollback must not
   * follow it anywhere a job could not write itself. The protected zone is restored here, by the
   * daemon: no process nightshift starts can write it, so nothing can race that restore.
   */
  private async restoreTouches(dir: string, digest: string | undefined): Promise<RestoreResult> {
    return (await this.worker(['restore', dir, digest ?? '-'])) as RestoreResult;
  }

  /**
   * What changed under the touched paths since the snapshot (its manifest against the tree now),
   * listed by restore-worker in its sandbox: a job may be swapping a folder of them for a link
   * while the walk goes on. `madeForFix`: the folders nightshift made for the touches (not the
   * fix's creation). Throws when they cannot be listed (no snapshot, a tampered manifest, a stop).
   */
  async files(dir: string, digests: SnapshotDigests | null, madeForFix: readonly string[], signal?: AbortSignal): Promise<FileChanges> {
    const out = await this.worker(['files', join(dir, TOUCHES), digests?.touches ?? '-'], JSON.stringify(madeForFix), {
      timeoutMs: FILES_TIMEOUT_MS,
      signal,
      stdoutCap: FILES_OUTPUT_MAX,
    });
    if (!isFileChanges(out)) throw new Error('the restore helper listed the files in an unknown form');
    return out;
  }

  /**
   * What a fix left beside its touched files is removed (and named), and the folders made for its
   * touches are removed when empty — by restore-worker in its sandbox, for the same reason.
   */
  async tidy(order: TidyOrder): Promise<{ count: number; first: string[] }> {
    if (!order.watched?.length && !order.created?.length) return { count: 0, first: [] };
    return (await this.worker(['tidy'], JSON.stringify(order))) as { count: number; first: string[] };
  }

  private async worker(
    args: string[],
    input?: string,
    o: { timeoutMs?: number; signal?: AbortSignal; stdoutCap?: number } = {},
  ): Promise<unknown> {
    const worker = join(installRoot(), 'dist', 'heal', 'restore-worker.js');
    if (!existsSync(worker)) throw new Error(`nightshift's restore helper ${worker} is missing (run npm run build in ${installRoot()})`);
    const timeoutMs = o.timeoutMs ?? RESTORE_TIMEOUT_MS;
    const r = await runBounded([process.execPath, worker, ...args], {
      input,
      timeoutMs,
      signal: o.signal,
      stdoutCap: o.stdoutCap,
      confine: { profile: 'restore', leash: this.leash() },
    });
    if (!r.ok) throw new Error(r.exitCode === 1 && r.stderr ? r.stderr : `the restore helper ${describeResult(r, timeoutMs)}`);
    try {
      return JSON.parse(r.stdout) as unknown;
    } catch {
      throw new Error(`the restore helper said something unreadable: ${r.stdout.slice(0, 200)}`);
    }
  }

  /** Removes a snapshot, manifests first (a half-removed snapshot reads as incomplete, not damaged). */
  async drop(dir: string): Promise<void> {
    this.zones.delete(dir);
    this.installs.delete(dir);
    if (!existsSync(dir)) return;
    await dropSnapshot(join(dir, TOUCHES)).catch(() => {});
    await dropSnapshot(join(dir, ZONE)).catch(() => {});
    await dropSnapshot(dir).catch(() => {});
  }
}

function isFileChanges(x: unknown): x is FileChanges {
  const o = x as Partial<Record<keyof FileChanges, unknown>> | null;
  const list = (v: unknown): boolean => Array.isArray(v) && v.every((p) => typeof p === 'string');
  const counts = o?.counts as Record<string, unknown> | undefined;
  return (
    typeof o === 'object' &&
    o !== null &&
    list(o.changed) &&
    list(o.created) &&
    list(o.removed) &&
    typeof counts === 'object' &&
    counts !== null &&
    ['changed', 'created', 'removed'].every((k) => typeof counts[k] === 'number')
  );
}

function words(r: RestoreResult): string {
  const lost = r.notRestored.length
    ? `; not made again: ${r.notRestored.slice(0, 3).join(', ')}${r.notRestored.length > 3 ? ', …' : ''}`
    : '';
  if (r.changed + r.removed + r.recreated === 0) return `unchanged${lost}`;
  return `${r.changed} changed back, ${r.removed} created removed, ${r.recreated} deleted returned${lost}`;
}
