// Voice calls (issue #13): each contact offers a voice call beside the video call; the callee sees
// which kind rings and may answer a video call with voice only. A voice call never asks for a
// camera on either side (the device ledger records every getUserMedia constraint the page made);
// sound flows; and either side can add its picture during the call (the side whose video only
// received until then renegotiates, through perfect negotiation).
import { test, expect } from './fixtures';
import type { Page } from '@playwright/test';
import type { User } from './fixtures';
import { dial, expectOnline, expectState, hangUp, inbound } from './calls';
import { deviceTracks, expectNoLiveDeviceTracks, mediaRequests } from './device-ledger';

/** Whether the page ever asked for a camera (getUserMedia with video constraints). */
async function askedForCamera(page: Page): Promise<boolean> {
  const requests = await mediaRequests(page);
  return requests.some((r) => r.method === 'getUserMedia' && r.constraints?.video);
}

/** Audio packets keep arriving. */
async function expectSoundFlowing(page: Page) {
  const before = await inbound(page);
  await expect.poll(async () => (await inbound(page)).audioPackets).toBeGreaterThan(before.audioPackets + 20);
}

/** The remote picture arrives: the video element has a size and decoded frames keep rising. */
async function expectPictureArriving(page: Page) {
  await expect
    .poll(() => page.getByTestId('remote-video').evaluate((v: HTMLVideoElement) => v.videoWidth))
    .toBeGreaterThan(0);
  const before = await inbound(page);
  await expect.poll(async () => (await inbound(page)).framesDecoded).toBeGreaterThan(before.framesDecoded + 5);
}

/** How many descriptions the page's connection has applied locally (offers and answers). */
const localDescriptions = (page: Page) =>
  page.evaluate(() => {
    const pc = (window as any).__duetPc as RTCPeerConnection;
    return pc.localDescription?.sdp.match(/^o=\S+ \S+ (\d+)/m)?.[1] ?? null;
  });

async function placeVoiceCall(caller: User, callee: User) {
  await expectOnline(caller, callee);
  await caller.page.locator(`[data-testid="voice-call"][data-user="${callee.name}"]`).click();
  await expectState(callee.page, 'incoming');
}

test('a voice call opens no camera on either side, sound flows, and either side adds its picture', async ({ users }) => {
  const [a, b] = await users(2);
  await expect(a.page.locator(`[data-testid="voice-call"][data-user="${b.name}"]`)).toHaveAttribute(
    'aria-label',
    `Voice call ${b.name}`,
  );
  await placeVoiceCall(a, b);
  await expect(b.page.getByTestId('incoming-kind')).toHaveText('Voice call');
  // Nothing to answer "with voice" instead: it is a voice call already.
  await expect(b.page.getByTestId('accept-voice')).toBeHidden();
  await b.page.getByTestId('accept').click();
  await expectState(a.page, 'in-call');
  await expectState(b.page, 'in-call');

  await expectSoundFlowing(a.page);
  await expectSoundFlowing(b.page);
  for (const page of [a.page, b.page]) {
    expect(await askedForCamera(page)).toBe(false);
    expect((await deviceTracks(page)).liveKinds).toEqual(['audio']);
    expect((await inbound(page)).framesDecoded).toBe(0);
    // Each shows the other's camera as off, not a black picture.
    await expect(page.getByTestId('remote-camera-off')).toBeVisible();
    await expect(page.getByTestId('toggle-camera')).toHaveAttribute('aria-pressed', 'true');
  }

  // The caller adds its picture: its video transceiver only received, so the call renegotiates.
  const before = await localDescriptions(a.page);
  await a.page.getByTestId('toggle-camera').click();
  await expectPictureArriving(b.page);
  await expect(b.page.getByTestId('remote-camera-off')).toHaveCount(0);
  expect(await localDescriptions(a.page)).not.toBe(before);
  await expect.poll(async () => (await deviceTracks(a.page)).liveKinds.sort()).toEqual(['audio', 'video']);
  await expectSoundFlowing(b.page);

  // The callee adds its own: it already had a sending transceiver, so no renegotiation is needed.
  await b.page.getByTestId('toggle-camera').click();
  await expectPictureArriving(a.page);
  await expect(a.page.getByTestId('remote-camera-off')).toHaveCount(0);
  await expectSoundFlowing(a.page);

  await hangUp(a.page);
  await expectNoLiveDeviceTracks(a.page);
  await expectNoLiveDeviceTracks(b.page);
});

test('a video call answered with voice: the callee never opens its camera, and sees the caller', async ({ users }) => {
  const [a, b] = await users(2);
  await dial(a, b);
  await expectState(b.page, 'incoming');
  await expect(b.page.getByTestId('incoming-kind')).toHaveText('Video call');
  await b.page.getByTestId('accept-voice').click();
  await expectState(a.page, 'in-call');
  await expectState(b.page, 'in-call');

  await expectPictureArriving(b.page);
  await expectSoundFlowing(a.page);
  expect(await askedForCamera(b.page)).toBe(false);
  expect((await deviceTracks(b.page)).liveKinds).toEqual(['audio']);
  expect(await askedForCamera(a.page)).toBe(true);
  await expect(a.page.getByTestId('remote-camera-off')).toBeVisible();
  expect((await inbound(a.page)).framesDecoded).toBe(0);

  // In Chinese: the contact's two buttons and the ringing card's kind.
  await hangUp(b.page);
  await a.page.getByTestId('lang-switch').click();
  await expect(a.page.locator(`[data-testid="voice-call"][data-user="${b.name}"]`)).toHaveAttribute('title', '语音通话');
  await expect(a.page.locator(`[data-testid="contact"][data-user="${b.name}"]`)).toHaveAttribute('title', '视频通话');
});
