// ICE restarts during a call, started the way the browser starts them for real: a network change
// (the window's `online` event, which the app listens to). The call must carry on with a new
// candidate pair, media flowing, the same call timer and the same verification code (the DTLS
// session, and so its certificates, survive an ICE restart).
import { expect, type ConsoleMessage, type Page } from '@playwright/test';
import { test } from './fixtures';
import { connect, expectMediaFlowing, expectState, timerSeconds } from './calls';
import { expectedCode, shownCode, transportInfo, type TransportInfo } from './transport';

/** What the browser would fire after the device joined a network. */
async function networkChanged(page: Page) {
  await page.evaluate(() => window.dispatchEvent(new Event('online')));
}

/** Waits until `page` runs on a new ICE generation: fresh credentials (ufrag) in its local
 * description. (Not "a new selected pair": on one host the old pair keeps working, and Chromium
 * was seen staying on it, or naming it in its stats, for many seconds after a restart. The
 * network-change test, where the old path dies, checks the pair.) */
async function expectRestarted(page: Page, before: TransportInfo) {
  await expect.poll(async () => (await transportInfo(page))?.localUfrag).not.toBe(before.localUfrag);
}

/** Errors and negotiation warnings the page logs (a failed setRemoteDescription and the like). */
function collectProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (message: ConsoleMessage) => {
    if (message.type() === 'error' || /setRemoteDescription|setLocalDescription|rollback/.test(message.text())) {
      problems.push(`${message.type()}: ${message.text()}`);
    }
  });
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  return problems;
}

test('the verification code and the call timer stay the same across an ICE restart', async ({ users }) => {
  const [a, b] = await users(2);
  await connect(a, b);
  const codeA = await shownCode(a.page);
  expect(await shownCode(b.page)).toBe(codeA);
  const [beforeA, beforeB] = [(await transportInfo(a.page))!, (await transportInfo(b.page))!];
  await expect.poll(() => timerSeconds(a.page)).toBeGreaterThanOrEqual(2);
  const secondsBefore = await timerSeconds(a.page);

  await networkChanged(a.page);
  await expectRestarted(a.page, beforeA);
  await expectRestarted(b.page, beforeB);
  await expectMediaFlowing(a.page);
  await expectMediaFlowing(b.page);

  const [afterA, afterB] = [(await transportInfo(a.page))!, (await transportInfo(b.page))!];
  // Same DTLS certificates on the new path, so the same code, on both screens.
  expect(afterA.localFingerprint).toBe(beforeA.localFingerprint);
  expect(afterA.remoteFingerprint).toBe(beforeA.remoteFingerprint);
  expect(await shownCode(a.page)).toBe(codeA);
  expect(await shownCode(b.page)).toBe(codeA);
  expect(codeA).toBe(expectedCode(afterA.localFingerprint, afterA.remoteFingerprint));
  expect(codeA).toBe(expectedCode(afterB.localFingerprint, afterB.remoteFingerprint));
  // The call did not start over.
  await expectState(a.page, 'in-call');
  expect(await timerSeconds(a.page)).toBeGreaterThanOrEqual(secondsBefore);
});

test('both sides restarting at once recover without an error on either side', async ({ users }) => {
  const [a, b] = await users(2);
  const problemsA = collectProblems(a.page);
  const problemsB = collectProblems(b.page);
  await connect(a, b);
  const [beforeA, beforeB] = [(await transportInfo(a.page))!, (await transportInfo(b.page))!];

  // Both offers cross on the wire: perfect negotiation lets the polite side (the callee, B) yield,
  // so A's restart is the one that happens, and B answers it with fresh credentials of its own.
  await Promise.all([networkChanged(a.page), networkChanged(b.page)]);
  await expectRestarted(a.page, beforeA);
  await expectRestarted(b.page, beforeB);
  await expectMediaFlowing(a.page);
  await expectMediaFlowing(b.page);
  for (const user of [a, b]) {
    await expectState(user.page, 'in-call');
    await expect(user.page.locator('.in-call')).toHaveAttribute('data-phase', 'connected');
  }
  expect([...problemsA, ...problemsB]).toEqual([]);
});
