// Two Duet instances behind a real HAProxy (Debian's `haproxy`, a private child process on
// loopback ports running the repository's own deploy/haproxy.cfg), sharing one database: the
// active instance dies during a call. Issue #17: media keeps flowing (it never went through
// Duet), both pages reconnect through the balancer to the standby, still logged in, and a new
// call between them connects.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { test, expect, DuetServer, befriend, newUser } from './fixtures';
import { connect, expectState, expectFramesKeepDecoding, expectMediaFlowing, backToIdle, hangUp } from './calls';

const CONFIG = path.resolve(__dirname, '..', '..', 'deploy', 'haproxy.cfg');

/** A loopback port free a moment ago (HAProxy cannot pick one itself and say which). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

class Balancer {
  private constructor(
    private readonly child: ChildProcess,
    readonly baseURL: string,
    private readonly log: () => string,
  ) {}

  static async start(active: DuetServer, standby: DuetServer): Promise<Balancer> {
    const port = await freePort();
    const child = spawn('haproxy', ['-db', '-f', CONFIG], {
      env: {
        ...process.env,
        DUET_LB_BIND: `127.0.0.1:${port}`,
        DUET_INSTANCE_1: new URL(active.baseURL).host,
        DUET_INSTANCE_2: new URL(standby.baseURL).host,
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

test('the active instance dies during a call: media keeps flowing, both pages move to the standby, a new call connects', async ({ browser }) => {
  // Both instances trust the balancer's forwarded headers and share the active one's SQLite
  // file (two processes on one file in WAL mode; PostgreSQL in production).
  const trust = { DUET_TRUSTED_PROXIES: '127.0.0.1/32' };
  const active = new DuetServer(trust);
  await active.start();
  const standby = new DuetServer({
    ...trust,
    DUET_DATABASE_URL: `sqlite://${path.join(active.dataDir, 'duet.db')}`,
  });
  await standby.start();
  const balancer = await Balancer.start(active, standby);
  try {
    const a = await newUser(browser, balancer, 'a');
    const b = await newUser(browser, balancer, 'b');
    await befriend(a, b);
    await connect(a, b);

    await active.stop('SIGKILL');
    // Media is peer to peer: frames keep being decoded while the pages find the standby.
    await expectFramesKeepDecoding(a.page, b.page);
    await expectState(a.page, 'in-call');
    // Both reconnect through the balancer, to the standby, logged in (one session store).
    for (const page of [a.page, b.page]) {
      await expect(page.getByTestId('offline-banner')).toHaveCount(0, { timeout: 30_000 });
    }
    await expectMediaFlowing(b.page);

    // Signaling works through the standby: hang up reaches the other side, a new call connects.
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
    await standby.dispose();
    await active.dispose();
  }
});
