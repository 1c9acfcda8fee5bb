// The network-namespace harness itself (#12), proved with today's app: a call between two
// browsers in their own namespaces, routed through a third that runs the server; a bandwidth
// cap and packet loss on one client's link show in the receivers' statistics; a network change
// is seen by the browser in its namespace; and the teardown leaves nothing of the topology
// behind, nor do the leftovers of a run that crashed.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Page } from '@playwright/test';
import { connect, expectOnline } from './calls';
import { inboundRate, inboundTotals, selectedPair } from './net-stats';
import { expect, namespaces, NetnsLab, test } from './netns';

// Each test builds and removes its own topology; none should come near the global 90 s.
test.describe.configure({ timeout: 60_000 });

/** Reported in the list output and kept in the HTML report. */
function report(type: string, description: string) {
  console.log(`${type}: ${description}`);
  test.info().annotations.push({ type, description });
}

const kbps = (n: number) => `${Math.round(n)} kbit/s`;

test('a call across the router: media both ways over the namespaces\' own addresses', async ({ lab }) => {
  const a = await lab.newUser('a');
  const b = await lab.newUser('b');
  await connect(a, b);

  const pairA = await selectedPair(a.page);
  const pairB = await selectedPair(b.page);
  report('pair A', JSON.stringify(pairA));
  report('pair B', JSON.stringify(pairB));
  // No NAT on the router: each side's host candidate is what the other side sees.
  expect(pairA).toMatchObject({
    local: { address: lab.address('a'), type: 'host', protocol: 'udp' },
    remote: { address: lab.address('b'), type: 'host', protocol: 'udp' },
  });
  expect(pairB).toMatchObject({
    local: { address: lab.address('b'), port: pairA!.remote.port },
    remote: { address: lab.address('a'), port: pairA!.local.port },
  });
});

test('a 300 kbit/s cap on B\'s link lowers the video bitrate both ways', async ({ lab }) => {
  const a = await lab.newUser('a');
  const b = await lab.newUser('b');
  await connect(a, b);

  // B receives through the cap on the router's end of B's link, A through the one on B's end.
  // A baseline well above the cap first: on a busy machine Chromium's encoder may drop its
  // resolution for CPU, and a comparison with a starved baseline would prove nothing.
  for (const page of [b.page, a.page]) {
    await expect
      .poll(async () => (await inboundRate(page, 1000)).videoKbps, { message: 'uncapped video bitrate', timeout: 20_000 })
      .toBeGreaterThan(400);
  }
  const [freeB, freeA] = await Promise.all([inboundRate(b.page, 3000), inboundRate(a.page, 3000)]);
  await lab.cap('b', 300);
  const [cappedB, cappedA] = await Promise.all([inboundRate(b.page, 3000), inboundRate(a.page, 3000)]);
  report('B receives', `${kbps(freeB.videoKbps)} uncapped, ${kbps(cappedB.videoKbps)} capped (${cappedB.framesPerSecond.toFixed(1)} fps)`);
  report('A receives', `${kbps(freeA.videoKbps)} uncapped, ${kbps(cappedA.videoKbps)} capped (${cappedA.framesPerSecond.toFixed(1)} fps)`);
  for (const [free, capped] of [[freeB, cappedB], [freeA, cappedA]]) {
    expect(capped.videoKbps).toBeLessThan(300);
    expect(capped.videoKbps).toBeLessThan(0.7 * free.videoKbps);
  }

  // Undone in the kernel (the bitrate itself takes Chromium's bandwidth estimator ~15 s to
  // climb back: not the harness's to prove).
  expect(await lab.shaping('b')).toMatch(/client qdisc tbf .* rate 300Kbit[^]*router qdisc tbf .* rate 300Kbit/);
  await lab.clear('b');
  expect(await lab.shaping('b')).not.toContain('tbf');
});

test('5 % UDP loss on B\'s link: B counts lost packets while frames keep decoding', async ({ lab }) => {
  const a = await lab.newUser('a');
  const b = await lab.newUser('b');
  await connect(a, b);

  const before = await inboundTotals(b.page);
  await lab.loss('b', 5);
  await expect.poll(async () => (await inboundTotals(b.page)).packetsLost).toBeGreaterThan(before.packetsLost);
  const [lossyB, lossyA] = await Promise.all([inboundRate(b.page, 3000), inboundRate(a.page, 3000)]);
  const after = await inboundTotals(b.page);
  report('B receives', `${after.packetsLost - before.packetsLost} packets lost of ${after.packetsReceived - before.packetsReceived + after.packetsLost - before.packetsLost}; over 3 s ${lossyB.lossPercent.toFixed(1)} % lost (after retransmissions), ${lossyB.framesPerSecond.toFixed(1)} fps`);
  report('A receives', `over 3 s ${lossyA.lossPercent.toFixed(1)} % lost, ${lossyA.framesPerSecond.toFixed(1)} fps`);
  // Signaling is TCP and unaffected; video still plays on both sides.
  expect(lossyB.framesPerSecond).toBeGreaterThan(5);
  expect(lossyA.framesPerSecond).toBeGreaterThan(5);
  await expect(b.page.getByTestId('call-view')).toHaveAttribute('data-state', 'in-call');

  expect(await lab.shaping('b')).toContain('numgen random mod 100 < 5');
  await lab.clear('b');
  expect(await lab.shaping('b')).not.toContain('numgen');
});

/** The non-loopback host candidates a fresh peer connection in the page gathers: the addresses
 * the browser itself currently knows, or null if gathering did not complete within 3 s (a probe
 * made while Chromium's network list is being updated can get a candidate for a vanished address
 * and never complete). With a microphone opened first: Chromium shows real addresses, not mDNS
 * names, only to a page that captures. */
async function hostAddresses(page: Page): Promise<string[] | null> {
  return page.evaluate(async () => {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const pc = new RTCPeerConnection();
    const found = new Set<string>();
    const complete = new Promise<boolean>((resolve) => {
      pc.onicecandidate = (e) => {
        if (e.candidate?.address && !e.candidate.address.startsWith('127.')) found.add(e.candidate.address);
        if (!e.candidate) resolve(true);
      };
      setTimeout(() => resolve(false), 3000);
    });
    pc.createDataChannel('probe');
    await pc.setLocalDescription();
    const completed = await complete;
    pc.close();
    stream.getTracks().forEach((t) => t.stop());
    return completed ? [...found].sort() : null;
  });
}

const serverAnswers = (page: Page) =>
  page.evaluate(() => fetch('/', { cache: 'no-store' }).then((r) => r.ok, () => false));

test('a network change: A goes offline, returns with a new address the browser uses', async ({ lab }) => {
  const a = await lab.newUser('a');
  const old = lab.address('a');
  // A browser just started in the namespace may not have listed its interfaces yet.
  await expect.poll(() => hostAddresses(a.page)).toEqual([old]);

  await lab.linkDown('a');
  // Chromium's own network-change notifier sees it, inside the namespace (~0.5 s).
  await expect.poll(() => a.page.evaluate(() => navigator.onLine)).toBe(false);
  expect(await serverAnswers(a.page)).toBe(false);

  const fresh = await lab.linkUp('a', { newAddress: true });
  expect(fresh).not.toBe(old);
  expect(lab.address('a')).toBe(fresh);
  await expect.poll(() => a.page.evaluate(() => navigator.onLine)).toBe(true);
  expect(await serverAnswers(a.page)).toBe(true);
  // WebRTC's view of the interfaces follows `online` by about 1.5 s.
  const since = Date.now();
  await expect.poll(() => hostAddresses(a.page)).toEqual([fresh]);
  report('A host candidates', `${old} before, ${fresh} seen alone within ${Date.now() - since} ms of the online event`);
});

/** A process that exists and is not a zombie (a zombie has exited; only its parent's reaping is
 * pending). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** The host's own interfaces (`ip -o link` in the test process's namespace). */
function hostLinks(): string[] {
  return spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean)
    .map((line) => line.split(':')[1].trim());
}

test('dispose removes namespaces, veths, processes and files; a crashed run\'s leftovers go too', async ({ launchOptions, headless }) => {
  // A crashed run: namespaces and a temporary folder named after an owner that no longer exists.
  const dead = spawnSync('true').pid!;
  const crashed = `duet-${dead}-0badc0-router`;
  spawnSync('ip', ['netns', 'add', crashed]);
  const crashedDir = path.join(tmpdir(), `duet-netns-${dead}-crashed`);
  mkdirSync(crashedDir, { recursive: true });
  const linksBefore = hostLinks();

  const lab = await NetnsLab.create({ launchOptions, headless });
  let pids: number[] = [];
  try {
    expect(await namespaces()).not.toContain(crashed);
    expect(existsSync(crashedDir)).toBe(false);

    const a = await lab.newUser('a');
    const b = await lab.newUser('b');
    await expectOnline(a, b);
    // State that must go with the namespaces.
    await lab.cap('a', 500);
    await lab.loss('b', 1);
    expect(await namespaces()).toEqual(expect.arrayContaining(Object.values(lab.ns)));
    pids = await lab.pids();
    // The server and two browsers with their helpers.
    expect(pids.length).toBeGreaterThan(4);
    // Nothing of ours was ever in the host's namespace.
    expect(hostLinks()).toEqual(linksBefore);
  } finally {
    await lab.dispose();
  }

  expect((await namespaces()).filter((ns) => ns.startsWith(lab.id))).toEqual([]);
  expect(hostLinks()).toEqual(linksBefore);
  expect(spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout).not.toContain(lab.id);
  expect(pids.filter(running)).toEqual([]);
  expect(existsSync(lab.dir)).toBe(false);
  expect(existsSync(lab.server.dataDir)).toBe(false);
  report('removed', `${Object.values(lab.ns).join(', ')}; ${pids.length} processes; ${lab.dir}`);
});
