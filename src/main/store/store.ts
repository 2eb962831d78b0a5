import type { Database } from 'better-sqlite3';
import { ArtifactsRepo } from './artifacts-repo.js';
import { AutomationsRepo } from './automations-repo.js';
import { EgressLogRepo } from './egress-log-repo.js';
import { GrantsRepo } from './grants-repo.js';
import { openDatabase } from './open.js';
import { SessionsRepo } from './sessions-repo.js';
import { SettingsRepo } from './settings-repo.js';

/** The SQLite store: one database file, one repository per area. All SQL lives in this folder. */
export class Store {
  readonly settings: SettingsRepo;
  readonly grants: GrantsRepo;
  readonly sessions: SessionsRepo;
  readonly automations: AutomationsRepo;
  readonly artifacts: ArtifactsRepo;
  readonly egressLog: EgressLogRepo;

  private constructor(readonly db: Database) {
    this.settings = new SettingsRepo(db);
    this.grants = new GrantsRepo(db);
    this.sessions = new SessionsRepo(db);
    this.automations = new AutomationsRepo(db);
    this.artifacts = new ArtifactsRepo(db);
    this.egressLog = new EgressLogRepo(db);
  }

  static open(dataDir: string): Store {
    return new Store(openDatabase(dataDir));
  }

  get schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  dispose(): void {
    if (this.db.open) this.db.close();
  }
}
