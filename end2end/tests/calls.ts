// What the call tests share: starting a call through the UI and proving that media flows,
// from the browser's own statistics.
import { expect, type Page } from '@playwright/test';
import type { User } from './fixtures';
import { expectNoLiveDeviceTracks } from './device-ledger';

export const callState = (page: Page) => page.getByTestId('call-view');

export async function expectState(page: Page, state: string, reason?: string) {
  await expect(callState(page)).toHaveAttribute('data-state', state);
  if (reason) await expect(callState(page)).toHaveAttribute('data-reason', reason);
}

/** Waits until `who` is listed as online on `viewer`'s contact list. */
export async function expectOnline(viewer: User, who: User) {
  await expect(viewer.page.locator(`[data-testid="contact"][data-user="${who.name}"]`)).toBeVisible();
}

/** `caller` clicks `callee` in the contact list. */
export async function dial(caller: User, callee: User) {
  await expectOnline(caller, callee);
  await caller.page.locator(`[data-testid="contact"][data-user="${callee.name}"]`).click();
}

/** A full call set-up through the UI: dial, ring, accept, and wait for both sides to talk. */
export async function connect(caller: User, callee: User) {
  await dial(caller, callee);
  await expectState(callee.page, 'incoming');
  await callee.page.getByTestId('accept').click();
  await expectState(caller.page, 'in-call');
  await expectState(callee.page, 'in-call');
  await expectMediaFlowing(caller.page);
  await expectMediaFlowing(callee.page);
}

interface InboundSample {
  framesDecoded: number;
  audioPackets: number;
}

/** Sums inbound RTP statistics of the page's current peer connection. */
export async function inbound(page: Page): Promise<InboundSample> {
  return page.evaluate(async () => {
    const pc = (window as unknown as { __duetPc?: RTCPeerConnection }).__duetPc;
    const sample = { framesDecoded: 0, audioPackets: 0 };
    if (!pc) return sample;
    const report = await pc.getStats();
    report.forEach((stat: any) => {
      if (stat.type !== 'inbound-rtp') return;
      if (stat.kind === 'video') sample.framesDecoded += stat.framesDecoded ?? 0;
      if (stat.kind === 'audio') sample.audioPackets += stat.packetsReceived ?? 0;
    });
    return sample;
  });
}

/** The remote video shows pictures, and decoded frames and audio packets keep rising. */
export async function expectMediaFlowing(page: Page) {
  await expect
    .poll(() => page.getByTestId('remote-video').evaluate((v: HTMLVideoElement) => v.videoWidth))
    .toBeGreaterThan(0);
  const first = await inbound(page);
  await expect.poll(async () => (await inbound(page)).framesDecoded).toBeGreaterThan(first.framesDecoded);
  await expect.poll(async () => (await inbound(page)).audioPackets).toBeGreaterThan(first.audioPackets);
}

/** Each page decodes new video frames: media goes on (peer to peer, whatever signaling does). */
export async function expectFramesKeepDecoding(...pages: Page[]) {
  for (const page of pages) {
    const before = await inbound(page);
    await expect.poll(async () => (await inbound(page)).framesDecoded).toBeGreaterThan(before.framesDecoded);
  }
}

/** No camera or microphone is open (the camera light is off): every device track the page ever
 * obtained, clones included, has ended within a few seconds. */
export async function expectNoLiveCapture(page: Page) {
  await expectNoLiveDeviceTracks(page);
}

/** The call timer's seconds ("m:ss" or "h:mm:ss"). */
export async function timerSeconds(page: Page): Promise<number> {
  const text = (await page.locator('.call-info .timer').textContent()) ?? '';
  return text.split(':').reduce((total, part) => total * 60 + Number(part), 0);
}

export async function hangUp(page: Page) {
  await page.getByTestId('hangup').click();
}

/** From the ended view back to the contact list. */
export async function backToIdle(page: Page) {
  const state = await callState(page).getAttribute('data-state');
  if (state === 'ended') {
    const back = page.getByTestId('back');
    if (await back.isVisible()) await back.click();
  }
  await expectState(page, 'idle');
}

/** The callee presses Accept; returns the milliseconds from the click (as the page receives it,
 * not from Playwright's call, whose checks before clicking take a while) to the first decoded
 * remote video frame, polled from the page's own statistics. A figure for benchmarks. */
export async function acceptAndTimeFirstFrame(callee: Page): Promise<number> {
  await callee.evaluate(() => {
    const w = window as any;
    w.__acceptAt = undefined;
    document.addEventListener(
      'click',
      (e) => {
        if ((e.target as Element).closest('[data-testid="accept"]')) w.__acceptAt = performance.now();
      },
      { capture: true, once: true },
    );
  });
  const frame = firstFrameAt(callee);
  await callee.getByTestId('accept').click();
  return (await frame) - (await callee.evaluate(() => (window as any).__acceptAt as number));
}

/** When the page's current peer connection first decoded a video frame (`performance.now()`). */
export function firstFrameAt(page: Page): Promise<number> {
  return page.evaluate(async () => {
    for (;;) {
      const pc = (window as any).__duetPc as RTCPeerConnection | undefined;
      if (pc) {
        let frames = 0;
        (await pc.getStats()).forEach((s: any) => {
          if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded ?? 0;
        });
        if (frames > 0) return performance.now();
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  });
}
