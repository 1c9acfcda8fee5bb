// A private Redis (Debian's `redis-server`, installed by scripts/install-tools test) for one
// test: a free loopback port, nothing saved to disk, stopped by its own PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from './coturn';

export class RedisServer {
  private child?: ChildProcess;
  port = 0;
  log = '';

  async start(): Promise<void> {
    this.port = await freePort();
    const child = spawn(
      'redis-server',
      ['--bind', '127.0.0.1', '--port', String(this.port), '--save', '', '--appendonly', 'no'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${this.log}`)), 15_000);
      const onData = (chunk: Buffer) => {
        this.log += chunk.toString();
        if (this.log.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${code}:\n${this.log}`));
      });
    });
  }

  url(): string {
    return `redis://127.0.0.1:${this.port}/`;
  }

  /** Stops it by its own PID. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
}
