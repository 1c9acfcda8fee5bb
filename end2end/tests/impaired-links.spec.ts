// Calls on impaired links (#12): each test builds its own namespaces (tests/netns.ts), one per
// browser and one for the server, and impairs one client's link for real: the link goes away and
// comes back with another address, packets are dropped, the bandwidth is capped. No click helps.
import type { Page } from '@playwright/test';
import { connect, expectState, timerSeconds } from './calls';
import { inboundTotals, outboundVideoKbps, selectedPair, videoSendLimits } from './net-stats';
import { expect, test } from './netns';

test.describe.configure({ timeout: 90_000 });

/** Reported in the list output and kept in the HTML report. */
function report(type: string, description: string) {
  console.log(`${type}: ${description}`);
  test.info().annotations.push({ type, description });
}

/** Resolves once `page` has decoded `frames` more video frames than it had at the call. */
async function framesResume(page: Page, frames = 10): Promise<void> {
  const from = (await inboundTotals(page)).framesDecoded;
  await expect
    .poll(async () => (await inboundTotals(page)).framesDecoded, { timeout: 30_000 })
    .toBeGreaterThan(from + frames);
}

test('a network change: B loses its link for 5 s and returns with a new address; the call recovers by itself', async ({ lab }) => {
  const a = await lab.newUser('a');
  const b = await lab.newUser('b');
  await connect(a, b);
  const before = await selectedPair(a.page);
  expect(before?.remote.address).toBe(lab.address('b'));
  await expect.poll(() => timerSeconds(a.page)).toBeGreaterThanOrEqual(2);
  const secondsBefore = await timerSeconds(a.page);

  await lab.linkDown('b');
  // The outage itself: a fault of a fixed length, as a user's Wi-Fi drop would be.
  await a.page.waitForTimeout(5_000);
  await expect(a.page.locator('.in-call')).toHaveAttribute('data-phase', 'reconnecting');
  await expect(a.page.locator('.link-state')).toHaveText('Reconnecting…');
  const returned = Date.now();
  const fresh = await lab.linkUp('b', { newAddress: true });

  await Promise.all([framesResume(a.page), framesResume(b.page)]);
  report('frames again after the link returned', `${Date.now() - returned} ms`);
  // A new path, through B's new address, and the same call: its timer did not start over.
  await expect.poll(async () => (await selectedPair(a.page))?.remote.address).toBe(fresh);
  expect((await selectedPair(b.page))?.local.address).toBe(fresh);
  for (const user of [a, b]) {
    await expectState(user.page, 'in-call');
    await expect(user.page.locator('.in-call')).toHaveAttribute('data-phase', 'connected');
  }
  expect(await timerSeconds(a.page)).toBeGreaterThanOrEqual(secondsBefore + 5);
});

const quality = (page: Page) => page.getByTestId('quality');

/** The figure the details panel shows for `metric`, as a number ("4.8 %" → 4.8). */
async function metric(page: Page, name: string): Promise<number> {
  const text = (await page.locator(`[data-testid="quality-details"] [data-metric="${name}"]`).textContent()) ?? '';
  return Number.parseFloat(text);
}

test('5 % packet loss both ways for 20 s: frames keep decoding, and the indicator shows the loss', async ({ lab }) => {
  const a = await lab.newUser('a');
  const b = await lab.newUser('b', 'b', { locale: 'zh-CN' });
  await connect(a, b);
  // A clean link first, to compare with.
  await expect(quality(b.page)).toHaveAttribute('data-level', 'good');
  await expect(quality(b.page)).toHaveAccessibleName('通话质量：良好');

  await lab.loss('b', 5);
  await quality(b.page).click();
  const details = b.page.getByTestId('quality-details');
  await expect(details).toBeVisible();
  // Twenty seconds of loss, every two-second window with new frames on both sides.
  let frames = [(await inboundTotals(a.page)).framesDecoded, (await inboundTotals(b.page)).framesDecoded];
  const levels = new Set<string>();
  let worstLoss = 0;
  for (let window = 0; window < 10; window++) {
    await b.page.waitForTimeout(2_000);
    const now = [(await inboundTotals(a.page)).framesDecoded, (await inboundTotals(b.page)).framesDecoded];
    expect(now[0], `A decodes during window ${window}`).toBeGreaterThan(frames[0]);
    expect(now[1], `B decodes during window ${window}`).toBeGreaterThan(frames[1]);
    frames = now;
    levels.add((await quality(b.page).getAttribute('data-level')) ?? '');
    worstLoss = Math.max(worstLoss, await metric(b.page, 'loss'));
  }
  report('B under 5 % loss', `levels ${[...levels].join(', ')}, incoming loss up to ${worstLoss} %`);
  expect(worstLoss).toBeGreaterThan(1);
  expect([...levels].some((level) => level === 'fair' || level === 'poor')).toBe(true);
  await lab.clear('b');
});

test('a 300 kbit/s cap: the indicator says poor, the sender lowers its bitrate, audio goes on, and it recovers', async ({ lab }) => {
  test.setTimeout(120_000);
  const a = await lab.newUser('a');
  const b = await lab.newUser('b');
  await connect(a, b);
  await expect(quality(a.page)).toHaveAttribute('data-level', 'good');
  // A sending rate well above the cap first (Chromium ramps up over a few seconds).
  await expect.poll(() => outboundVideoKbps(b.page, 1_000), { timeout: 20_000 }).toBeGreaterThan(400);
  const free = await outboundVideoKbps(b.page, 2_000);

  await lab.cap('b', 300);
  await expect(quality(a.page)).toHaveAttribute('data-level', 'poor');
  await expect(quality(a.page)).toHaveAccessibleName('Connection quality: poor');
  // B's sender adapts to the link rather than overflowing it.
  await expect.poll(() => outboundVideoKbps(b.page, 2_000), { timeout: 30_000 }).toBeLessThan(300);
  const audio = (await inboundTotals(a.page)).packetsReceived;
  await expect.poll(async () => (await inboundTotals(a.page)).packetsReceived).toBeGreaterThan(audio + 50);
  report('B sends video', `${Math.round(free)} kbit/s free, under 300 kbit/s capped`);

  await lab.clear('b');
  await expect(quality(a.page)).toHaveAttribute('data-level', 'good', { timeout: 30_000 });
  await expect.poll(() => outboundVideoKbps(b.page, 2_000), { timeout: 45_000 }).toBeGreaterThan(350);
});

test('heavy loss: the sender caps its video and lifts the cap again when the link heals', async ({ lab }) => {
  test.setTimeout(120_000);
  const a = await lab.newUser('a');
  const b = await lab.newUser('b');
  await connect(a, b);
  expect(await videoSendLimits(a.page)).toEqual({ maxBitrate: undefined, scaleResolutionDownBy: undefined });

  // What A sends is lost on its way into B (B's receiver reports it back to A).
  await lab.loss('b', 15);
  await expect.poll(async () => (await videoSendLimits(a.page)).maxBitrate ?? 0, { timeout: 30_000 }).toBeGreaterThan(0);
  const capped = await videoSendLimits(a.page);
  const audio = (await inboundTotals(b.page)).packetsReceived;
  await expect.poll(async () => (await inboundTotals(b.page)).packetsReceived).toBeGreaterThan(audio + 50);
  report('A caps its video at', JSON.stringify(capped));
  // B has had a poor link for a while: the app says so and offers to save the bandwidth.
  const offer = b.page.getByTestId('poor-connection');
  await expect(offer).toBeVisible({ timeout: 30_000 });
  await offer.getByTestId('poor-connection-camera-off').click();
  await expect(offer).toBeHidden();
  await expect(a.page.getByTestId('remote-camera-off')).toBeVisible();

  await lab.clear('b');
  // One step back up after a run of good seconds: a higher cap, or none.
  await expect
    .poll(async () => (await videoSendLimits(a.page)).maxBitrate ?? Infinity, { timeout: 45_000 })
    .toBeGreaterThan(capped.maxBitrate!);
});
