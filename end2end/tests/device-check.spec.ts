// The pre-call check (issue #13): a live preview, a microphone level meter that moves with
// Chromium's fake microphone (a beep every second), a test sound, and the device pickers; closing
// it ends every track it obtained (the device ledger sees them all).
import { test, expect } from './fixtures';
import type { Page } from '@playwright/test';
import { deviceTracks, expectNoLiveDeviceTracks } from './device-ledger';

const meter = (page: Page) => page.getByTestId('mic-level').evaluate((m: HTMLMeterElement) => m.value);

/** The meter's readings over `ms`, every 50 ms. */
async function readings(page: Page, ms: number): Promise<number[]> {
  const values: number[] = [];
  for (let t = 0; t < ms; t += 50) {
    values.push(await meter(page));
    await page.waitForTimeout(50);
  }
  return values;
}

const previewFrames = (page: Page) =>
  page.getByTestId('check-preview').evaluate((v: HTMLVideoElement) => v.getVideoPlaybackQuality().totalVideoFrames);

test('the check shows the camera, the meter follows the microphone, and closing it releases every device', async ({ users }) => {
  const [a] = await users(1);
  const page = a.page;
  await page.getByTestId('check-devices').click();
  const check = page.getByTestId('device-check');
  await expect(page.getByRole('group', { name: 'Check camera and microphone' })).toBeVisible();
  // The button that opened it is gone: focus is on the one that closes it.
  await expect(page.getByTestId('check-done')).toBeFocused();

  // A live preview.
  await expect.poll(() => previewFrames(page)).toBeGreaterThan(10);
  // The meter moves with the fake microphone's beeps: loud and quiet within two seconds.
  await expect.poll(async () => (await deviceTracks(page)).liveKinds.sort()).toEqual(['audio', 'video']);
  const values = await readings(page, 2_500);
  console.log(`meter: loudest ${Math.max(...values).toFixed(3)}, quietest ${Math.min(...values).toFixed(3)}`);
  expect(Math.max(...values), values.join(' ')).toBeGreaterThan(0.2);
  expect(Math.min(...values), values.join(' ')).toBeLessThan(0.05);

  // The test sound's button works without an error on the page (what reaches a speaker cannot be
  // measured here).
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.getByTestId('test-sound').click();
  expect(errors).toEqual([]);

  // Another microphone from the pickers inside the check: the devices open anew with it, the
  // first ones stop, the preview goes on.
  const microphones = check.getByTestId('pick-microphone');
  await expect.poll(async () => (await microphones.locator('option').count())).toBe(3);
  const ledger = await deviceTracks(page);
  await microphones.selectOption({ label: 'Fake Audio Input 1' });
  await expect.poll(async () => (await deviceTracks(page)).obtained).toBe(ledger.obtained + 2);
  await expect.poll(async () => (await deviceTracks(page)).liveKinds.sort()).toEqual(['audio', 'video']);
  const shown = await previewFrames(page);
  await expect.poll(() => previewFrames(page)).toBeGreaterThan(shown);

  // Closed: every track the page ever obtained has ended (the camera light is off).
  await page.getByTestId('check-done').click();
  await expect(check).toHaveCount(0);
  await expectNoLiveDeviceTracks(page);
  expect((await deviceTracks(page)).obtained).toBe(4);

  // In Chinese too.
  await page.getByTestId('lang-switch').click();
  await expect(page.getByTestId('check-devices')).toHaveText('检查摄像头和麦克风');
});
