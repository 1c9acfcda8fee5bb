// Calls on impaired links (#12): each test builds its own namespaces (tests/netns.ts), one per
// browser and one for the server, and impairs one client's link for real: the link goes away and
// comes back with another address, packets are dropped, the bandwidth is capped. No click helps.
import type { Page } from '@playwright/test';
import { connect, expectState, timerSeconds } from './calls';
import { inboundTotals, selectedPair } from './net-stats';
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
