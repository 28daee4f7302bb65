// One daemon per state folder. The lock is an exclusive SQLite lock on a small file: the kernel
// releases it when the process dies, even by kill -9, so there is no stale lock to clean up and no
// pid guessing.
import Database from 'better-sqlite3';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { errorMessage } from '../errors.js';

export class LockHeld extends Error {}

export class StateLock {
  private constructor(private readonly db: Database.Database) {}

  static acquire(path: string): StateLock {
    const db = new Database(path, { timeout: 0 });
    try {
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('CREATE TABLE IF NOT EXISTS owner (pid INTEGER)');
      db.exec('BEGIN EXCLUSIVE');
    } catch (err) {
      db.close();
      if ((err as { code?: string }).code === 'SQLITE_BUSY' || /locked|busy/i.test(errorMessage(err))) {
        let pid = '';
        try {
          pid = readFileSync(join(dirname(path), 'daemon.pid'), 'utf8').trim();
        } catch {
          // unknown
        }
        throw new LockHeld(
          `another nightshift daemon already owns the state folder ${dirname(path)}${pid ? ` (pid ${pid})` : ''}; ` +
            'stop it first (systemctl stop nightshift) — two daemons would run every job twice',
        );
      }
      throw err;
    }
    writeFileSync(join(dirname(path), 'daemon.pid'), `${process.pid}\n`);
    return new StateLock(db);
  }

  release(): void {
    try {
      this.db.exec('ROLLBACK');
    } catch {
      // not in a transaction
    }
    this.db.close();
  }
}
