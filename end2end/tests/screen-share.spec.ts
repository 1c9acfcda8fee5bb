// Screen share (issue #13): the shared screen replaces the camera on the same sender, without
// renegotiation, its sound goes out mixed with the microphone on the microphone's sender, and the
// camera comes back when sharing stops, from the app's button or from the browser's own stop.
// Chromium's fake screen is 1280x720 and its fake camera 640x480, so what the other side decodes
// tells which one it receives.
import { test, expect, type User } from './fixtures';
import type { Page } from '@playwright/test';
import { connect, expectFramesKeepDecoding, hangUp, inbound } from './calls';
import { clearTimeline, installCallTimeline } from './call-timeline';
import { deviceTracks, expectNoLiveDeviceTracks, mediaRequests } from './device-ledger';

/** The size of the video the page decodes now, from its peer connection's statistics. */
async function decodedSize(page: Page): Promise<string> {
  return page.evaluate(async () => {
    const pc = (window as any).__duetPc as RTCPeerConnection | undefined;
    let size = 'none';
    (await pc?.getStats())?.forEach((s: any) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video' && s.frameWidth) size = `${s.frameWidth}x${s.frameHeight}`;
    });
    return size;
  });
}

/** Offers the page made or received so far (the call timeline's marks). */
async function offers(page: Page): Promise<number> {
  const marks: { what: string }[] = await page.evaluate(() => (window as any).__timeline);
  return marks.filter((m) => /^ws [←→] offer$/.test(m.what)).length;
}

/** The label and state of what the page's audio sender sends: its microphone, or the mix of the
 * microphone with a shared tab's sound (a Web Audio track, "MediaStreamAudioDestinationNode"). */
async function audioSent(page: Page): Promise<string | null> {
  return page.evaluate(() => {
    const pc = (window as any).__duetPc as RTCPeerConnection;
    const track = pc.getSenders().find((s) => s.track?.kind === 'audio')?.track;
    return track ? `${track.label}:${track.readyState}` : null;
  });
}

async function expectReceiving(viewer: User, size: string, sharer: User) {
  await expect.poll(() => decodedSize(viewer.page), { timeout: 20_000 }).toBe(size);
  await expectFramesKeepDecoding(viewer.page);
  const badge = viewer.page.getByTestId('remote-sharing');
  if (size === '1280x720') await expect(badge).toContainText(`${sharer.name} is sharing their screen`);
  else await expect(badge).toHaveCount(0);
}

test('screen share replaces the camera on the same sender, and the camera comes back from the button and from the browser stop', async ({ users }) => {
  const [a, b] = await users(2);
  for (const user of [a, b]) {
    await installCallTimeline(user.context);
    await user.page.reload();
    await clearTimeline(user.page);
  }
  await connect(a, b);
  await expectReceiving(b, '640x480', a);
  const before = [await offers(a.page), await offers(b.page)];
  expect(before[0] + before[1]).toBeGreaterThan(0);

  const micLabel = await audioSent(a.page).then((sent) => sent?.replace(/:live$/, ''));
  expect(micLabel).toMatch(/Fake/);

  const share = a.page.getByTestId('toggle-share');
  await expect(share).toHaveAttribute('aria-label', 'Share screen');
  await expect(share).toHaveAttribute('aria-pressed', 'false');

  // Shared from the button: the other side decodes the screen, whole (not cropped).
  await share.click();
  await expect(share).toHaveAttribute('aria-pressed', 'true');
  await expect(share).toHaveAttribute('aria-label', 'Stop sharing');
  await expectReceiving(b, '1280x720', a);
  const fit = await b.page.getByTestId('remote-video').evaluate((v) => getComputedStyle(v).objectFit);
  expect(fit).toBe('contain');
  const displayRequests = (await mediaRequests(a.page)).filter((r) => r.method === 'getDisplayMedia');
  expect(displayRequests).toEqual([{ method: 'getDisplayMedia', constraints: { video: true, audio: true } }]);
  // Camera, microphone, the screen and its sound (Chromium's fake capture has a "Fake audio").
  expect((await deviceTracks(a.page)).live).toBe(4);
  // The sound goes out mixed with the microphone, on the microphone's sender, and is heard.
  await expect.poll(() => audioSent(a.page)).toBe('MediaStreamAudioDestinationNode:live');
  const heard = (await inbound(b.page)).audioPackets;
  await expect.poll(async () => (await inbound(b.page)).audioPackets).toBeGreaterThan(heard + 10);
  await b.page.screenshot({ path: test.info().outputPath('receiving-screen.png') });

  // Stopped from the button: back to the camera, and the capture is over.
  await share.click();
  await expect(share).toHaveAttribute('aria-pressed', 'false');
  await expectReceiving(b, '640x480', a);
  await expect.poll(async () => (await deviceTracks(a.page)).live).toBe(2);
  // The microphone alone again, on the same sender.
  await expect.poll(() => audioSent(a.page)).toBe(`${micLabel}:live`);

  // Shared with the S key, then stopped the way the browser's own "Stop sharing" does: the track
  // ends (stop() itself fires no `ended`, so the test sends it, as the browser would).
  await a.page.keyboard.press('s');
  await expect(share).toHaveAttribute('aria-pressed', 'true');
  await expectReceiving(b, '1280x720', a);
  await a.page.evaluate(() => {
    const pc = (window as any).__duetPc as RTCPeerConnection;
    const track = pc.getSenders().find((s) => s.track?.kind === 'video')?.track;
    if (!track || !track.label.startsWith('screen')) throw new Error(`not the screen: ${track?.label}`);
    track.stop();
    track.dispatchEvent(new Event('ended'));
  });
  await expect(share).toHaveAttribute('aria-pressed', 'false');
  await expectReceiving(b, '640x480', a);

  // All on the same senders: no offer since the call was set up, on either side.
  expect([await offers(a.page), await offers(b.page)]).toEqual(before);
  expect(await a.page.evaluate(() => (window as any).__duetPc.signalingState)).toBe('stable');

  // The call ends with sharing on: every track, the screen's included, ends.
  await a.page.keyboard.press('s');
  await expectReceiving(b, '1280x720', a);
  await hangUp(a.page);
  for (const user of [a, b]) await expectNoLiveDeviceTracks(user.page);
  const ledger = await deviceTracks(a.page);
  expect(ledger.obtained).toBe(2 + 3 * 2);
  expect((await mediaRequests(a.page)).filter((r) => r.method === 'getDisplayMedia')).toHaveLength(3);
});
