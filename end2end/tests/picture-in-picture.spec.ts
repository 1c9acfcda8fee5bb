// Picture-in-picture (issue #13): the peer's video floats in the browser's own window, the button
// says so (aria-pressed), and it follows the browser when the window is closed from outside the
// page (its "back to tab" button, here `document.exitPictureInPicture()`). Headless Chromium opens
// a real picture-in-picture window (checked: `document.pictureInPictureElement` is the video).
import { test, expect } from './fixtures';
import type { Page } from '@playwright/test';
import { connect, expectFramesKeepDecoding } from './calls';

/** The `data-testid` of the element floating now, if any. */
const floating = (page: Page) =>
  page.evaluate(() => (document.pictureInPictureElement as HTMLElement | null)?.dataset.testid ?? null);

/** The remote `<video>` element keeps presenting new frames (it decodes while it floats). */
async function expectVideoPlays(page: Page) {
  const frames = () =>
    page.getByTestId('remote-video').evaluate((v: HTMLVideoElement) => v.getVideoPlaybackQuality().totalVideoFrames);
  const before = await frames();
  await expect.poll(frames).toBeGreaterThan(before + 5);
}

test('the remote video floats in picture-in-picture, and the button follows the browser', async ({ users }) => {
  const [a, b] = await users(2);
  await connect(a, b);
  const pip = b.page.getByTestId('picture-in-picture');
  await expect(pip).toHaveAttribute('aria-label', 'Picture in picture');
  await expect(pip).toHaveAttribute('aria-pressed', 'false');

  await pip.click();
  await expect.poll(() => floating(b.page)).toBe('remote-video');
  await expect(pip).toHaveAttribute('aria-pressed', 'true');
  await expectVideoPlays(b.page);
  await expectFramesKeepDecoding(b.page);

  // The button brings it back.
  await pip.click();
  await expect.poll(() => floating(b.page)).toBeNull();
  await expect(pip).toHaveAttribute('aria-pressed', 'false');

  // Closed by the browser, not the page: the button hears of it.
  await pip.click();
  await expect(pip).toHaveAttribute('aria-pressed', 'true');
  await b.page.evaluate(() => document.exitPictureInPicture());
  await expect(pip).toHaveAttribute('aria-pressed', 'false');
  await expect.poll(() => floating(b.page)).toBeNull();
  await expectVideoPlays(b.page);

  // Named in the other language too.
  await b.page.getByTestId('lang-switch').click();
  await expect(pip).toHaveAttribute('aria-label', '画中画');
});
