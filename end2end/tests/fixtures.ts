// The harness every browser test stands on: a real Duet server (release build) on a free
// loopback port with its own temporary SQLite file, and as many independent users as a test
// asks for, each in its own browser context (own cookies, own fake camera).
import { test as base, expect, type Browser, type BrowserContext, type Page } from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { installLedger } from './device-ledger';

const ROOT = path.resolve(__dirname, '..', '..');
const BINARY = process.env.DUET_BIN ?? path.join(ROOT, 'target', 'release', 'duet');
const SITE_ROOT = process.env.DUET_SITE_ROOT ?? path.join(ROOT, 'target', 'site');

export class DuetServer {
  private child?: ChildProcess;
  baseURL = '';
  readonly dataDir: string;
  readonly launcher: string[];

  /** `launcher` runs the binary through another command, e.g. `['ip', 'netns', 'exec', NS]`
   * (which execs it, so the child's PID stays the server's own); `parentDir` holds the data
   * folder instead of the system's temporary folder (a harness that removes it wholesale). */
  constructor(
    readonly extraEnv: Record<string, string> = {},
    options: { launcher?: string[]; parentDir?: string } = {},
  ) {
    this.launcher = options.launcher ?? [];
    this.dataDir = mkdtempSync(path.join(options.parentDir ?? tmpdir(), 'duet-e2e-'));
  }

  /** Starts the server; `addr` defaults to a free port (the first start) or the previous one. */
  async start(addr = this.baseURL ? new URL(this.baseURL).host : '127.0.0.1:0'): Promise<void> {
    const [command, ...args] = [...this.launcher, BINARY];
    const child = spawn(command, args, {
      env: {
        ...process.env,
        DUET_ADDR: addr,
        DUET_DATA_DIR: this.dataDir,
        DUET_SITE_ROOT: SITE_ROOT,
        // Every test registers its own users and opens its pages, all from 127.0.0.1.
        DUET_REGISTER_LIMIT: '100000',
        DUET_MAX_CONNECTIONS_PER_IP: '100000',
        RUST_LOG: process.env.RUST_LOG ?? 'info',
        ...this.extraEnv,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.child = child;
    // The server logs its bound address once it is accepting connections.
    this.baseURL = await new Promise<string>((resolve, reject) => {
      let log = '';
      const timer = setTimeout(() => reject(new Error(`duet did not start:\n${log}`)), 30_000);
      child.stderr!.on('data', (chunk: Buffer) => {
        log += chunk.toString();
        const match = /Duet is serving addr=(\S+)( tls=true)?/.exec(log.replace(/\x1b\[[0-9;]*m/g, ''));
        if (match) {
          clearTimeout(timer);
          resolve(`${match[2] ? 'https' : 'http'}://${match[1]}`);
        }
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`duet exited with ${code}:\n${log}`));
      });
    });
    child.stderr!.resume();
  }

  /** Stops the server: SIGTERM (graceful) or SIGKILL (a crash). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
    this.child = undefined;
  }

  async dispose(): Promise<void> {
    await this.stop('SIGKILL');
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

export interface User {
  name: string;
  password: string;
  context: BrowserContext;
  page: Page;
}

/** A unique username per call, so tests never share accounts or depend on order. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString('hex')}`;
}

/** Registers a fresh account in its own browser context and opens the app logged in.
 * `registerFromPage`: the page itself registers (a same-origin fetch), for a server that only
 * the browser can reach, e.g. one in a network namespace: Playwright's `context.request` is made
 * by the test process, outside the namespace. */
export async function newUser(
  browser: Browser,
  // A Duet server, or anything in front of one (a load balancer).
  server: Pick<DuetServer, 'baseURL'>,
  prefix = 'user',
  options: { locale?: string; open?: boolean; registerFromPage?: boolean } = {},
): Promise<User> {
  const context = await browser.newContext({
    baseURL: server.baseURL,
    locale: options.locale ?? 'en-US',
    permissions: ['camera', 'microphone'],
    // A server with --tls-self-signed.
    ignoreHTTPSErrors: server.baseURL.startsWith('https:'),
  });
  await installLedger(context);
  const name = uniqueName(prefix);
  const password = `pw-${randomBytes(6).toString('hex')}`;
  if (options.registerFromPage) {
    const page = await context.newPage();
    await page.goto('/');
    const response = await page.evaluate(async (body) => {
      const r = await fetch('/user/register', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { ok: r.ok, text: await r.text() };
    }, { username: name, password });
    expect(response.ok, response.text).toBeTruthy();
    expect(JSON.parse(response.text)).toEqual({ flag: true });
    // Reloaded with the session cookie the registration set.
    if (options.open !== false) await page.goto('/');
    return { name, password, context, page };
  }
  const response = await context.request.post('/user/register', {
    data: { username: name, password },
  });
  expect(response.ok(), await response.text()).toBeTruthy();
  expect(await response.json()).toEqual({ flag: true });
  const page = await context.newPage();
  if (options.open !== false) await page.goto('/');
  return { name, password, context, page };
}

/** `user` acts on their contact book: `request`, `accept`, `decline`, `remove`, `block`,
 * `unblock` the account `name`. From the page when it is open (a server only the browser can
 * reach), else from the test process with the context's cookies. */
export async function contactAction(user: User, action: string, name: string): Promise<void> {
  const body = { username: name };
  if (user.page.url().startsWith('http')) {
    const answer = await user.page.evaluate(
      async ({ action, body }) => {
        const r = await fetch(`/contacts/${action}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        return { ok: r.ok, text: await r.text() };
      },
      { action, body },
    );
    expect(answer.ok, answer.text).toBeTruthy();
  } else {
    const answer = await user.context.request.post(`/contacts/${action}`, { data: body });
    expect(answer.ok(), await answer.text()).toBeTruthy();
  }
}

/** Makes `a` and `b` contacts (a asks, b accepts): only contacts see each other online. */
export async function befriend(a: User, b: User): Promise<void> {
  await contactAction(a, 'request', b.name);
  await contactAction(b, 'accept', a.name);
}

type Fixtures = {
  /** Opens `n` logged-in users on the worker's server, each a contact of every user the test
   * opened before it. */
  users: (count: number, options?: { locale?: string }) => Promise<User[]>;
};
type WorkerFixtures = { server: DuetServer };

export const test = base.extend<Fixtures, WorkerFixtures>({
  server: [
    async ({}, use) => {
      const server = new DuetServer();
      await server.start();
      await use(server);
      await server.dispose();
    },
    { scope: 'worker' },
  ],
  users: async ({ browser, server }, use) => {
    const opened: User[] = [];
    await use(async (count, options) => {
      const made: User[] = [];
      for (let i = 0; i < count; i++) {
        const user = await newUser(browser, server, String.fromCharCode(97 + opened.length), options);
        for (const other of opened) await befriend(other, user);
        opened.push(user);
        made.push(user);
      }
      return made;
    });
    for (const user of opened) await user.context.close();
  },
});

export { expect };
