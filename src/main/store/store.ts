import type { Database } from 'better-sqlite3';
import { ArtifactsRepo } from './artifacts-repo.js';
import { AutomationsRepo } from './automations-repo.js';
import { ChangesRepo } from './changes-repo.js';
import { EgressLogRepo } from './egress-log-repo.js';
import { GrantsRepo } from './grants-repo.js';
import { InboxRepo } from './inbox-repo.js';
import { openDatabase } from './open.js';
import { RunsRepo } from './runs-repo.js';
import { SecretsRepo } from './secrets-repo.js';
import { SessionsRepo } from './sessions-repo.js';
import { SettingsRepo } from './settings-repo.js';

/** The SQLite store: one database file, one repository per area. All SQL lives in this folder. */
export class Store {
  readonly settings: SettingsRepo;
  readonly grants: GrantsRepo;
  readonly sessions: SessionsRepo;
  readonly automations: AutomationsRepo;
  readonly runs: RunsRepo;
  readonly inbox: InboxRepo;
  readonly artifacts: ArtifactsRepo;
  readonly egressLog: EgressLogRepo;
  /** Staged folder edits (review grants) and the journal of what applying them did. */
  readonly changes: ChangesRepo;
  /** Secrets the VM never sees: names, hosts and sealed values (issue 16). */
  readonly secrets: SecretsRepo;

  private constructor(readonly db: Database) {
    this.settings = new SettingsRepo(db);
    this.grants = new GrantsRepo(db);
    this.sessions = new SessionsRepo(db);
    this.automations = new AutomationsRepo(db);
    this.runs = new RunsRepo(db);
    this.inbox = new InboxRepo(db);
    this.artifacts = new ArtifactsRepo(db);
    this.egressLog = new EgressLogRepo(db);
    this.changes = new ChangesRepo(db);
    this.secrets = new SecretsRepo(db);
  }

  static open(dataDir: string): Store {
    return new Store(openDatabase(dataDir));
  }

  get schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  /**
   * Runs `fn` in a `BEGIN IMMEDIATE` transaction: the write lock is taken up front, so a
   * read-then-write across repositories (find due slots, record them as runs) cannot interleave
   * with another process.
   */
  immediate<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /**
   * SQLite's `PRAGMA data_version`: changes only when another connection commits, so a watcher
   * can tell another process's write (a new automation) from this process's own.
   */
  dataVersion(): number {
    return this.db.pragma('data_version', { simple: true }) as number;
  }

  dispose(): void {
    if (this.db.open) this.db.close();
  }
}

/** The part of the store that schedules automations and records their runs and inbox items. */
export type AutomationTables = Pick<Store, 'automations' | 'runs' | 'inbox' | 'immediate'>;
