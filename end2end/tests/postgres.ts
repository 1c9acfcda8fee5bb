// A database of its own for one test, on the private PostgreSQL that the test command starts for
// the whole run (`scripts/test` runs the browser suite under `scripts/with-postgres`, which names
// that cluster in DUET_TEST_POSTGRES_URL; the cluster is stopped and removed after the run).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export class PostgresDatabase {
  private constructor(
    private readonly admin: string,
    private readonly name: string,
  ) {}

  /** A new, empty database; `null` when no cluster was named (a spec run on its own). */
  static create(): PostgresDatabase | null {
    const admin = process.env.DUET_TEST_POSTGRES_URL;
    if (!admin) return null;
    const name = `duet_e2e_${randomBytes(6).toString('hex')}`;
    execFileSync('psql', [admin, '-v', 'ON_ERROR_STOP=1', '-qc', `CREATE DATABASE ${name}`]);
    return new PostgresDatabase(admin, name);
  }

  url(): string {
    const url = new URL(this.admin);
    url.pathname = `/${this.name}`;
    return url.toString();
  }

  /** Drops it, closing whatever connections a killed instance left. */
  drop(): void {
    execFileSync('psql', [this.admin, '-v', 'ON_ERROR_STOP=1', '-qc', `DROP DATABASE IF EXISTS ${this.name} WITH (FORCE)`]);
  }
}
