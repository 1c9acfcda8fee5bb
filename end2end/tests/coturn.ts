// A private coturn (Debian's `turnserver`, installed by scripts/install-tools test) for one
// test: a free loopback port, a random shared secret (TURN REST API, `use-auth-secret`), its own
// relay port range, pid file and database in a temporary folder; stopped by its own PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A free loopback TCP port (coturn listens on UDP and TCP on the same number). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

export class Coturn {
  private child?: ChildProcess;
  readonly secret = randomBytes(24).toString('hex');
  readonly dir = mkdtempSync(path.join(tmpdir(), 'duet-coturn-'));
  port = 0;
  log = '';

  async start(): Promise<void> {
    this.port = await freePort();
    // A relay port range of its own, so two runs on one machine do not collide.
    const minPort = 40000 + Math.floor(Math.random() * 200) * 100;
    const child = spawn(
      'turnserver',
      [
        '-n',
        '--listening-ip=127.0.0.1',
        `--listening-port=${this.port}`,
        `--min-port=${minPort}`,
        `--max-port=${minPort + 99}`,
        '--realm=duet.test',
        '--use-auth-secret',
        `--static-auth-secret=${this.secret}`,
        '--no-cli',
        '--no-tls',
        '--no-dtls',
        '--allow-loopback-peers',
        '--log-file=stdout',
        '--simple-log',
        '-v',
        `--pidfile=${path.join(this.dir, 'turnserver.pid')}`,
        `--db=${path.join(this.dir, 'turndb')}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`coturn did not start:\n${this.log}`)), 15_000);
      const onData = (chunk: Buffer) => {
        this.log += chunk.toString();
        if (this.log.includes(`UDP listener opened on: 127.0.0.1:${this.port}`)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`coturn exited with ${code}:\n${this.log}`));
      });
    });
  }

  url(): string {
    return `turn:127.0.0.1:${this.port}?transport=udp`;
  }

  /** Stops this coturn by its own PID and removes its state folder. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null && child.pid) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      const signal = (sig: NodeJS.Signals) => {
        try {
          process.kill(child.pid!, sig);
        } catch {
          // Already gone (ESRCH): nothing to stop.
        }
      };
      signal('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null && child.signalCode === null) {
        signal('SIGKILL');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
