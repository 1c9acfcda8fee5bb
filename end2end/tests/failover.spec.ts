// Two Duet instances sharing one database (PostgreSQL under the test command, which starts a
// private cluster for the run; the first instance's SQLite file for a spec run on its own) and a
// private Redis (issue #17): users on different
// instances see and call each other, and behind a real HAProxy (Debian's `haproxy`, a private
// child process on loopback ports running the repository's own deploy/haproxy.cfg) an instance
// dies during a call: media keeps flowing (it never went through Duet), both pages reconnect
// through the balancer to the other instance, still logged in, and a new call connects.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { test, expect, DuetServer, befriend, newUser } from './fixtures';
import { connect, expectState, expectFramesKeepDecoding, expectMediaFlowing, backToIdle, hangUp } from './calls';
import { freePort } from './coturn';
import { RedisServer } from './redis';
import { PostgresDatabase } from './postgres';

const CONFIG = path.resolve(__dirname, '..', '..', 'deploy', 'haproxy.cfg');

class Balancer {
  private constructor(
    private readonly child: ChildProcess,
    readonly baseURL: string,
    private readonly log: () => string,
  ) {}

  static async start(first: DuetServer, second: DuetServer): Promise<Balancer> {
    const port = await freePort();
    const child = spawn('haproxy', ['-db', '-f', CONFIG], {
      env: {
        ...process.env,
        DUET_LB_BIND: `127.0.0.1:${port}`,
        DUET_INSTANCE_1: new URL(first.baseURL).host,
        DUET_INSTANCE_2: new URL(second.baseURL).host,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let said = '';
    child.stderr!.on('data', (chunk: Buffer) => (said += chunk.toString()));
    const balancer = new Balancer(child, `http://127.0.0.1:${port}`, () => said);
    // Ready when it answers through to an instance (a bounded wait on that condition).
    await expect
      .poll(
        async () => {
          try {
            return (await fetch(`${balancer.baseURL}/healthz`)).status;
          } catch {
            return 0;
          }
        },
        { message: `HAProxy answers; it said:\n${said}`, timeout: 15_000 },
      )
      .toBe(200);
    return balancer;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGKILL');
    await exited;
  }

  said(): string {
    return this.log();
  }
}

/** Everything two linked instances stand on, stopped and removed together. */
class Cluster {
  private constructor(
    readonly first: DuetServer,
    readonly second: DuetServer,
    private readonly redis: RedisServer,
    private readonly database: PostgresDatabase | null,
  ) {}

  /** Two instances on one database and one Redis, trusting a balancer's forwarded headers. The
   * database is PostgreSQL when the test command gave a cluster; else the first instance's SQLite
   * file (two processes on one file in WAL mode), said in the test's output. */
  static async start(): Promise<Cluster> {
    const redis = new RedisServer();
    await redis.start();
    const database = PostgresDatabase.create();
    const shared: Record<string, string> = { DUET_TRUSTED_PROXIES: '127.0.0.1/32', DUET_REDIS_URL: redis.url() };
    if (database) shared.DUET_DATABASE_URL = database.url();
    const first = new DuetServer(shared);
    await first.start();
    const second = new DuetServer({
      DUET_DATABASE_URL: `sqlite://${path.join(first.dataDir, 'duet.db')}`,
      ...shared,
    });
    await second.start();
    console.log(`two instances on ${database ? 'PostgreSQL' : 'one SQLite file'} and Redis`);
    return new Cluster(first, second, redis, database);
  }

  async dispose(): Promise<void> {
    await this.second.dispose();
    await this.first.dispose();
    await this.redis.stop();
    this.database?.drop();
  }
}

test('users on two instances see each other online and call each other, media flowing', async ({ browser }) => {
  const cluster = await Cluster.start();
  const { first, second } = cluster;
  try {
    // Each page talks to its own instance only.
    const a = await newUser(browser, first, 'a');
    const b = await newUser(browser, second, 'b');
    // Calling is from the contact list: b is shown online on a's instance.
    await befriend(a, b);
    await connect(a, b);
    await hangUp(a.page);
    await expectState(b.page, 'ended', 'hangup');
    await backToIdle(a.page);
    await backToIdle(b.page);
    await connect(b, a);
    await a.context.close();
    await b.context.close();
  } finally {
    await cluster.dispose();
  }
});

test('an instance dies during a call: media keeps flowing, both pages move to the other, a new call connects', async ({ browser }) => {
  const cluster = await Cluster.start();
  const { first, second } = cluster;
  const balancer = await Balancer.start(first, second);
  try {
    // Through the balancer, which spreads them over both instances.
    const a = await newUser(browser, balancer, 'a');
    const b = await newUser(browser, balancer, 'b');
    await befriend(a, b);
    await connect(a, b);

    await first.stop('SIGKILL');
    // Media is peer to peer: frames keep being decoded while the pages find the other instance.
    await expectFramesKeepDecoding(a.page, b.page);
    await expectState(a.page, 'in-call');
    // Both reconnect through the balancer, to the instance left, logged in (one session store).
    for (const page of [a.page, b.page]) {
      await expect(page.getByTestId('offline-banner')).toHaveCount(0, { timeout: 30_000 });
    }
    await expectMediaFlowing(b.page);

    // Signaling works through the instance left: hang up reaches the other side, a new call
    // connects.
    await hangUp(a.page);
    await expectState(b.page, 'ended', 'hangup');
    await backToIdle(a.page);
    await backToIdle(b.page);
    await connect(b, a);
    await a.context.close();
    await b.context.close();
  } catch (error) {
    test.info().attach('haproxy.log', { body: balancer.said(), contentType: 'text/plain' });
    throw error;
  } finally {
    await balancer.stop();
    await cluster.dispose();
  }
});
