// A ledger of every device track a page ever obtained, installed before any of the app's code
// runs (a Playwright init script). It wraps getUserMedia, getDisplayMedia and the clone() methods
// of MediaStream and MediaStreamTrack, so a test counts what the browser really holds — the
// camera light — rather than the tracks the app says it holds.
import { expect, type BrowserContext, type Page } from '@playwright/test';

/** Runs in the page, before the app. Kept free of closures over test code. */
function installDeviceLedger() {
  const w = window as any;
  if (w.__deviceLedger) return;
  const ledger = {
    tracks: [] as MediaStreamTrack[],
    constraints: [] as unknown[],
    device: new WeakSet<MediaStreamTrack>(),
  };
  Object.defineProperty(w, '__deviceLedger', { value: ledger });
  const record = (track: MediaStreamTrack) => {
    if (!ledger.device.has(track)) {
      ledger.device.add(track);
      ledger.tracks.push(track);
    }
    return track;
  };
  const recordStream = (stream: MediaStream) => {
    stream.getTracks().forEach(record);
    return stream;
  };
  const devices = (window as any).MediaDevices?.prototype;
  for (const method of ['getUserMedia', 'getDisplayMedia']) {
    const original = devices?.[method];
    if (typeof original !== 'function') continue;
    devices[method] = async function (this: MediaDevices, constraints?: unknown) {
      ledger.constraints.push({ method, constraints: JSON.parse(JSON.stringify(constraints ?? null)) });
      return recordStream(await original.call(this, constraints));
    };
  }
  // A clone of a device track is a device track too (it keeps the camera on by itself).
  const streamClone = MediaStream.prototype.clone;
  MediaStream.prototype.clone = function (this: MediaStream) {
    const copy = streamClone.call(this);
    const originals = this.getTracks();
    copy.getTracks().forEach((track, i) => {
      if (originals[i] && ledger.device.has(originals[i])) record(track);
    });
    return copy;
  };
  const trackClone = MediaStreamTrack.prototype.clone;
  MediaStreamTrack.prototype.clone = function (this: MediaStreamTrack) {
    const copy = trackClone.call(this);
    if (ledger.device.has(this)) record(copy);
    return copy;
  };
}

export async function installLedger(context: BrowserContext) {
  await context.addInitScript(installDeviceLedger);
}

export interface DeviceTracks {
  obtained: number;
  live: number;
  liveKinds: string[];
}

/** Every device track the page obtained so far, and how many are still live. */
export async function deviceTracks(page: Page): Promise<DeviceTracks> {
  return page.evaluate(() => {
    const ledger = (window as any).__deviceLedger;
    if (!ledger) throw new Error('device ledger not installed');
    const live = (ledger.tracks as MediaStreamTrack[]).filter((t) => t.readyState === 'live');
    return { obtained: ledger.tracks.length, live: live.length, liveKinds: live.map((t) => t.kind) };
  });
}

/** The constraints of every getUserMedia / getDisplayMedia call the page made. */
export async function mediaRequests(page: Page): Promise<{ method: string; constraints: any }[]> {
  return page.evaluate(() => (window as any).__deviceLedger.constraints);
}

/** No camera, microphone or screen capture is live, within a few seconds (camera light off). */
export async function expectNoLiveDeviceTracks(page: Page, timeout = 5_000) {
  await expect
    .poll(async () => (await deviceTracks(page)).liveKinds, {
      timeout,
      message: 'device tracks still live (the camera light would be on)',
    })
    .toEqual([]);
}
