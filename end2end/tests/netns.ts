// A private network for one browser test: three Linux network namespaces, none of which touches
// the host's own interfaces, routes or sysctls.
//
//        A (browser)                  router (Duet server)                 B (browser)
//   eth0 198.18.N+1.2/24 ── veth ── to-a 198.18.N+1.1   to-b 198.18.N+2.1 ── veth ── eth0 198.18.N+2.2/24
//                                   lo   198.18.N.1/32  (the server's address)
//
// Both ends of every veth live in our own namespaces, so deleting the namespaces deletes
// everything. The router forwards between A and B without NAT, so each browser's host
// candidate is what the other one sees. Impairments act on one client's link (its veth pair):
// loss (nftables, UDP only, both directions, in the client's namespace), a bandwidth cap (tbf on
// both ends of the pair) and a network change (the client's interface loses its address and
// carrier, then comes back, possibly with another address).
//
// Names are `duet-<owner pid>-<random>-…`: a run that crashed leaves namespaces whose owner is
// dead, and the next lab removes them (and stops what still runs inside them).
import { chromium, test as base, type Browser, type LaunchOptions } from '@playwright/test';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DuetServer, befriend, newUser, type User } from './fixtures';

export type Side = 'a' | 'b';
const SIDES: Side[] = ['a', 'b'];

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const NAME = /^duet-(\d+)-[0-9a-f]+-(router|a|b)$/;
const TEMP = /^duet-netns-(\d+)-/;
/** The client's interface inside its namespace, and the router's end of each side's pair. */
const CLIENT_IF = 'eth0';
const routerIf = (side: Side) => `to-${side}`;
/** nftables table holding a client's packet loss rules. */
const LOSS_TABLE = 'duet_loss';

/** The result of one command; `run` throws with the command line and its output on failure. */
interface Ran {
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], input?: string): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', (error) => reject(new Error(`${command} ${args.join(' ')}: ${error.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`\`${command} ${args.join(' ')}\` exited with ${code}: ${stderr.trim()}`));
    });
    // A command that fails before reading its input closes the pipe: `close` reports it.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input);
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but is not ours to signal.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function kill(pid: number) {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** Names of all network namespaces on the machine (`ip netns list` prints `name (id: n)`). */
export async function namespaces(): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  return stdout
    .split('\n')
    .map((line) => line.split(' ')[0])
    .filter(Boolean);
}

/** PIDs of the processes whose network namespace is `ns`. */
async function pidsIn(ns: string): Promise<number[]> {
  const { stdout } = await run('ip', ['netns', 'pids', ns]);
  return stdout.split(/\s+/).filter(Boolean).map(Number);
}

/** Refuses clearly, instead of skipping, where namespaces cannot be made. */
function requireNamespaces() {
  if (process.platform !== 'linux') throw new Error('the network-namespace harness needs Linux');
  if (process.getuid?.() !== 0) {
    throw new Error('the network-namespace harness needs root (ip netns, veth, nftables, tc)');
  }
  for (const tool of ['ip', 'tc']) {
    const probe = spawnSync(tool, ['-V'], { stdio: 'ignore' });
    if (probe.error) throw new Error(`the network-namespace harness needs \`${tool}\` (iproute2): ${probe.error.message}`);
  }
}

/** Removes what labs of dead test processes left: namespaces (after stopping the processes
 * still inside them) and temporary folders. Labs of live processes are left alone, so two runs
 * on one machine do not tear each other down. */
export async function removeLeftovers(): Promise<string[]> {
  const removed: string[] = [];
  for (const ns of await namespaces()) {
    const match = NAME.exec(ns);
    if (!match || alive(Number(match[1]))) continue;
    for (const pid of await pidsIn(ns)) kill(pid);
    await run('ip', ['netns', 'del', ns]);
    removed.push(ns);
  }
  for (const entry of readdirSync(tmpdir())) {
    const match = TEMP.exec(entry);
    if (!match || alive(Number(match[1]))) continue;
    rmSync(path.join(tmpdir(), entry), { recursive: true, force: true });
    removed.push(path.join(tmpdir(), entry));
  }
  return removed;
}

export interface LabOptions {
  /** The browsers' launch options (Playwright's `launchOptions` fixture: the config's args). */
  launchOptions?: LaunchOptions;
  headless?: boolean;
  /** Extra environment for the Duet server. */
  serverEnv?: Record<string, string>;
}

interface SideState {
  /** Host part of the client's current address in its /24. */
  host: number;
  up: boolean;
  lossPercent?: number;
  capKbit?: number;
  browser?: Promise<Browser>;
}

export class NetnsLab {
  /** `duet-<pid>-<random>`: the prefix of every namespace of this lab. */
  readonly id = `duet-${process.pid}-${randomBytes(3).toString('hex')}`;
  readonly ns: Record<'router' | Side, string> = {
    router: `${this.id}-router`,
    a: `${this.id}-a`,
    b: `${this.id}-b`,
  };
  /** Third octet block of this lab in 198.18.0.0/16 (benchmarking addresses, RFC 2544): the
   * server's /32 and the two client /24s. Random so that two labs' addresses differ in logs. */
  private readonly block = 4 * Math.floor(Math.random() * 63);
  readonly serverAddress = `198.18.${this.block}.1`;
  readonly server: DuetServer;
  readonly dir: string;
  private readonly sides: Record<Side, SideState> = { a: { host: 2, up: true }, b: { host: 2, up: true } };
  private readonly created: string[] = [];
  private readonly users: User[] = [];
  private disposed = false;

  private constructor(private readonly options: LabOptions) {
    this.dir = mkdtempSync(path.join(tmpdir(), `duet-netns-${process.pid}-`));
    // Its data inside our folder: a crashed run's database goes with the folder.
    this.server = new DuetServer(options.serverEnv ?? {}, {
      launcher: ['ip', 'netns', 'exec', this.ns.router],
      parentDir: this.dir,
    });
  }

  /** Builds the topology and starts the server; on any failure removes what it made. */
  static async create(options: LabOptions = {}): Promise<NetnsLab> {
    requireNamespaces();
    await removeLeftovers();
    const lab = new NetnsLab(options);
    try {
      await lab.build();
      await lab.server.start(`${lab.serverAddress}:0`);
    } catch (error) {
      await lab.dispose().catch(() => undefined);
      throw error;
    }
    return lab;
  }

  /** `http://198.18.N.1:<port>`, reachable from both clients through the router. */
  get baseURL(): string {
    return this.server.baseURL;
  }

  private subnet(side: Side): string {
    return `198.18.${this.block + (side === 'a' ? 1 : 2)}`;
  }

  /** The router's address on `side`'s link: the client's gateway. */
  gateway(side: Side): string {
    return `${this.subnet(side)}.1`;
  }

  /** The client's current address on its link (after `linkDown`, the one it had). */
  address(side: Side): string {
    return `${this.subnet(side)}.${this.sides[side].host}`;
  }

  private ip(ns: string, ...args: string[]) {
    return run('ip', ['-n', ns, ...args]);
  }

  private exec(ns: string, command: string, ...args: string[]) {
    return run('ip', ['netns', 'exec', ns, command, ...args]);
  }

  private async build() {
    for (const ns of Object.values(this.ns)) {
      await run('ip', ['netns', 'add', ns]);
      this.created.push(ns);
      await this.ip(ns, 'link', 'set', 'lo', 'up');
      // IPv4 only: no link-local IPv6 candidates, so a selected pair is one of our addresses.
      // Set before the veths exist, which inherit `default`.
      await this.exec(ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
    }
    // Per namespace: this is the router's forwarding switch, not the host's.
    await this.exec(this.ns.router, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1');
    await this.ip(this.ns.router, 'addr', 'add', `${this.serverAddress}/32`, 'dev', 'lo');
    for (const side of SIDES) {
      // Made inside the router namespace with its peer created directly in the client's: the
      // host namespace never holds either end.
      await this.ip(this.ns.router, 'link', 'add', routerIf(side), 'type', 'veth', 'peer', 'name', CLIENT_IF, 'netns', this.ns[side]);
      await this.ip(this.ns.router, 'addr', 'add', `${this.gateway(side)}/24`, 'dev', routerIf(side));
      await this.ip(this.ns.router, 'link', 'set', routerIf(side), 'up');
      await this.bringUp(side);
    }
  }

  private async bringUp(side: Side) {
    const ns = this.ns[side];
    await this.ip(ns, 'addr', 'add', `${this.address(side)}/24`, 'dev', CLIENT_IF);
    await this.ip(ns, 'link', 'set', CLIENT_IF, 'up');
    await this.ip(ns, 'route', 'replace', 'default', 'via', this.gateway(side));
    this.sides[side].up = true;
  }

  /** The browser of `side`, launched on first use: Debian's Chromium run through
   * `ip netns exec`, which execs it, so Playwright's pipe and the PID are Chromium's own. */
  browser(side: Side): Promise<Browser> {
    const state = this.sides[side];
    // The promise, not the browser: two users opened at once share one launch.
    state.browser ??= this.launch(side);
    return state.browser;
  }

  private async launch(side: Side): Promise<Browser> {
    if (!this.baseURL) throw new Error('the lab server has not started');
    const wrapper = path.join(this.dir, `chromium-${side}.sh`);
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${this.ns[side]} ${CHROMIUM} "$@"\n`);
    chmodSync(wrapper, 0o755);
    const launch = this.options.launchOptions ?? {};
    return chromium.launch({
      ...launch,
      headless: this.options.headless ?? true,
      executablePath: wrapper,
      args: [
        ...(launch.args ?? []),
        // getUserMedia needs a secure context; the server is plain HTTP on a non-loopback address.
        `--unsafely-treat-insecure-origin-as-secure=${this.baseURL}`,
      ],
    });
  }

  /** A fresh account in a new context of `side`'s browser, logged in and on the app, and a
   * contact of every user the lab made before. */
  async newUser(side: Side, prefix: string = side, options: { locale?: string; open?: boolean } = {}): Promise<User> {
    const user = await newUser(await this.browser(side), this.server, prefix, { ...options, registerFromPage: true });
    // Everyone in one lab knows each other.
    for (const other of this.users) await befriend(other, user);
    this.users.push(user);
    return user;
  }

  /** The client's link goes away: its interface loses its address and its carrier (as a laptop
   * leaving a Wi-Fi network). Loss and cap rules stay and apply again after `linkUp`. */
  async linkDown(side: Side): Promise<void> {
    const ns = this.ns[side];
    await this.ip(ns, 'link', 'set', CLIENT_IF, 'down');
    await this.ip(ns, 'addr', 'flush', 'dev', CLIENT_IF);
    this.sides[side].up = false;
  }

  /** The link returns; with `newAddress` the client gets the next unused address in its subnet
   * (a different network as far as ICE is concerned). Returns the client's address. */
  async linkUp(side: Side, options: { newAddress?: boolean } = {}): Promise<string> {
    if (this.sides[side].up) throw new Error(`link ${side} is already up`);
    if (options.newAddress) this.sides[side].host += 1;
    await this.bringUp(side);
    return this.address(side);
  }

  /** Drops `percent` % of UDP packets to and from the client (media; the signaling over TCP
   * is untouched). Replaces an earlier loss rule of this side. Packets to the client are dropped
   * on its way in; packets from it in the router, as a lossy network would: a rule on the
   * client's own output would fail `sendto()` with EPERM, which WebRTC sees and works around. */
  async loss(side: Side, percent: number): Promise<void> {
    if (!(percent >= 0 && percent <= 100)) throw new Error(`loss percent out of range: ${percent}`);
    const drop = `meta l4proto udp numgen random mod 100 < ${Math.round(percent)} drop`;
    const table = `${LOSS_TABLE}_${side}`;
    // `table …; delete table …` first: replaces the rules whether or not they existed.
    const ruleset = (chain: string) =>
      [`table inet ${table}`, `delete table inet ${table}`, `table inet ${table} {`, `  ${chain}`, `}`].join('\n');
    await this.nft(this.ns[side], ruleset(`chain input { type filter hook input priority 0; policy accept; ${drop}; }`));
    await this.nft(
      this.ns.router,
      ruleset(`chain forward { type filter hook forward priority 0; policy accept; iifname "${routerIf(side)}" ${drop}; }`),
    );
    this.sides[side].lossPercent = percent;
  }

  private async nft(ns: string, script: string) {
    try {
      await run('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], script);
    } catch (error) {
      if (spawnSync('nft', ['-v'], { stdio: 'ignore' }).error) {
        throw new Error('packet loss needs nftables: apt-get install -y nftables');
      }
      throw error;
    }
  }

  /** Caps the side's link at `kbit` kbit/s in both directions: a token bucket on each end of
   * its veth pair (client→router leaves the client's end, router→client the router's). */
  async cap(side: Side, kbit: number): Promise<void> {
    if (!(kbit > 0)) throw new Error(`cap must be positive: ${kbit}`);
    // 20 ms worth of tokens, at least a few full packets; 100 ms of queue before tbf drops.
    const burst = Math.max(4096, Math.round((kbit * 1000) / 8 / 50));
    const tbf = ['root', 'tbf', 'rate', `${kbit}kbit`, 'burst', String(burst), 'latency', '100ms'];
    await run('tc', ['-n', this.ns[side], 'qdisc', 'replace', 'dev', CLIENT_IF, ...tbf]);
    await run('tc', ['-n', this.ns.router, 'qdisc', 'replace', 'dev', routerIf(side), ...tbf]);
    this.sides[side].capKbit = kbit;
  }

  /** Removes the side's loss and cap. */
  async clear(side: Side): Promise<void> {
    const state = this.sides[side];
    if (state.lossPercent !== undefined) {
      const table = `${LOSS_TABLE}_${side}`;
      for (const ns of [this.ns[side], this.ns.router]) {
        await this.nft(ns, `table inet ${table}\ndelete table inet ${table}\n`);
      }
      state.lossPercent = undefined;
    }
    if (state.capKbit !== undefined) {
      await run('tc', ['-n', this.ns[side], 'qdisc', 'del', 'dev', CLIENT_IF, 'root']);
      await run('tc', ['-n', this.ns.router, 'qdisc', 'del', 'dev', routerIf(side), 'root']);
      state.capKbit = undefined;
    }
  }

  /** What the kernel holds for the side's link: both ends' qdiscs and the client's and router's
   * nftables rulesets, as `tc` and `nft` print them (to check that an impairment is really in place or
   * really gone, without waiting for a congestion controller to react). */
  async shaping(side: Side): Promise<string> {
    const client = await run('tc', ['-n', this.ns[side], 'qdisc', 'show', 'dev', CLIENT_IF]);
    const router = await run('tc', ['-n', this.ns.router, 'qdisc', 'show', 'dev', routerIf(side)]);
    const rules = async (ns: string) =>
      spawnSync('nft', ['-v'], { stdio: 'ignore' }).error ? '' : (await this.exec(ns, 'nft', 'list', 'ruleset')).stdout;
    return `client ${client.stdout}router ${router.stdout}${await rules(this.ns[side])}${await rules(this.ns.router)}`;
  }

  /** PIDs of every process inside this lab's namespaces (server, browsers and their children). */
  async pids(): Promise<number[]> {
    const all: number[] = [];
    for (const ns of this.created) all.push(...(await pidsIn(ns)));
    return all;
  }

  /** Closes the browsers, stops the server, deletes the namespaces (and with them every veth,
   * address, qdisc and nftables rule) and the temporary files. Every step runs even if an
   * earlier one failed; the failures are thrown together at the end. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const errors: unknown[] = [];
    const step = async (work: () => Promise<unknown>) => {
      try {
        await work();
      } catch (error) {
        errors.push(error);
      }
    };
    for (const user of this.users) await step(() => user.context.close());
    for (const side of SIDES) {
      // A launch that failed has nothing to close (and the test already saw its error).
      await step(async () => (await this.sides[side].browser?.catch(() => undefined))?.close());
    }
    await step(() => this.server.dispose());
    // Anything still inside our namespaces was started by this lab (a renderer that outlived
    // its browser, say): stop it by PID so the namespaces really go away.
    for (const ns of this.created) {
      await step(async () => {
        for (const pid of await pidsIn(ns)) kill(pid);
      });
    }
    for (const ns of [...this.created].reverse()) await step(() => run('ip', ['netns', 'del', ns]));
    await step(async () => rmSync(this.dir, { recursive: true, force: true }));
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `lab ${this.id}: ${errors.length} teardown steps failed`);
  }
}

/** `test` with a `lab`: a fresh topology per test, disposed after it whatever the outcome. */
export const test = base.extend<{ lab: NetnsLab }>({
  lab: async ({ launchOptions, headless }, use) => {
    const lab = await NetnsLab.create({ launchOptions, headless });
    try {
      await use(lab);
    } finally {
      await lab.dispose();
    }
  },
});

export { expect } from '@playwright/test';
