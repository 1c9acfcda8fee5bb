// Choosing devices (issue #13): camera, microphone and speaker pickers before and during a call;
// a pick during a call swaps the track on the same sender (no renegotiation: the descriptions do
// not change) and stops the old one; a camera that goes away is replaced by another, which the
// page says; the choice is remembered for the next call. Chromium lists three fake cameras with
// device-count=3 (fake_device_0..2), and three fake microphones and speakers in any case.
import { test, expect } from './fixtures';
import type { Page } from '@playwright/test';
import config from '../playwright.config';
import { backToIdle, connect, expectFramesKeepDecoding, hangUp, inbound } from './calls';
import { deviceTracks, mediaRequests } from './device-ledger';

const launch = config.use!.launchOptions!;
test.use({
  launchOptions: {
    ...launch,
    args: launch.args!.map((arg) =>
      arg === '--use-fake-device-for-media-stream' ? `${arg}=device-count=3` : arg,
    ),
  },
});

/** What the page's connection sends: each sender's track label by kind, and the descriptions
 * (unchanged: nothing was renegotiated). */
async function sending(page: Page) {
  return page.evaluate(() => {
    const pc = (window as any).__duetPc as RTCPeerConnection;
    const labels: Record<string, string> = {};
    for (const sender of pc.getSenders()) {
      if (sender.track?.readyState === 'live') labels[sender.track.kind] = sender.track.label;
    }
    return {
      labels,
      senders: pc.getSenders().length,
      descriptions: [pc.localDescription?.sdp, pc.remoteDescription?.sdp],
    };
  });
}

const label = (page: Page, kind: string) => sending(page).then((s) => s.labels[kind] ?? null);

/** The labels a picker offers. */
const offered = (page: Page, testid: string) =>
  page.getByTestId(testid).first().locator('option').allTextContents();

test('devices are picked before a call, switched during it on the same sender, replaced when lost, and remembered', async ({ users }) => {
  const [a, b] = await users(2);

  // Before the call: the pickers on the idle pane, in English.
  await a.page.getByTestId('devices').locator('summary').click();
  await expect(a.page.getByTestId('devices')).toContainText('Camera');
  await expect.poll(() => offered(a.page, 'pick-camera')).toEqual(['fake_device_0', 'fake_device_1', 'fake_device_2']);
  await expect.poll(async () => (await offered(a.page, 'pick-microphone')).length).toBe(3);
  await a.page.getByTestId('pick-microphone').selectOption({ label: 'Fake Audio Input 1' });
  await a.page.getByTestId('lang-switch').click();
  await expect(a.page.getByTestId('devices')).toContainText('摄像头');
  await expect(a.page.getByTestId('devices')).toContainText('麦克风');
  await a.page.getByTestId('lang-switch').click();

  // The chosen microphone is the call's (asked for exactly; one unplugged since would give way to
  // any other).
  await connect(a, b);
  expect(await label(a.page, 'audio')).toBe('Fake Audio Input 1');
  const asked = (await mediaRequests(a.page)).filter((r) => r.method === 'getUserMedia');
  expect(asked[0].constraints.audio.deviceId.exact).toBe(await a.page.evaluate(() => localStorage['duet.microphone']));
  const before = [await sending(a.page), await sending(b.page)];
  expect(before[0].labels.video).toBe('fake_device_0');

  // During the call: the camera switches on the same sender; the old one stops.
  await a.page.getByTestId('devices').locator('summary').click();
  await a.page.getByTestId('pick-camera').selectOption({ label: 'fake_device_2' });
  await expect.poll(() => label(a.page, 'video')).toBe('fake_device_2');
  await expect.poll(async () => (await deviceTracks(a.page)).liveKinds.sort()).toEqual(['audio', 'video']);
  await expectFramesKeepDecoding(b.page);
  // So does the microphone, and b still hears a.
  await a.page.getByTestId('pick-microphone').selectOption({ label: 'Fake Audio Input 2' });
  await expect.poll(() => label(a.page, 'audio')).toBe('Fake Audio Input 2');
  const heard = (await inbound(b.page)).audioPackets;
  await expect.poll(async () => (await inbound(b.page)).audioPackets).toBeGreaterThan(heard + 10);
  await expect.poll(async () => (await deviceTracks(a.page)).liveKinds.sort()).toEqual(['audio', 'video']);
  // The speaker: the peer's video plays through the chosen output.
  const speakers = a.page.getByTestId('pick-speaker');
  await speakers.selectOption({ label: 'Fake Audio Output 1' });
  const speaker = await speakers.inputValue();
  await expect.poll(() => a.page.getByTestId('remote-video').evaluate((v: any) => v.sinkId)).toBe(speaker);

  // The camera goes away (unplugged: its track ends by itself): another one takes its place,
  // and the page says which.
  await a.page.evaluate(() => {
    const pc = (window as any).__duetPc as RTCPeerConnection;
    const track = pc.getSenders().find((s) => s.track?.kind === 'video')!.track!;
    track.stop();
    track.dispatchEvent(new Event('ended'));
  });
  await expect.poll(() => label(a.page, 'video')).toBe('fake_device_0');
  await expect(a.page.getByTestId('device-notice')).toHaveText('Your camera was disconnected. Now using fake_device_0.');
  await expect(a.page.getByTestId('device-notice')).toHaveAttribute('role', 'status');
  await expectFramesKeepDecoding(b.page);

  // Nothing was renegotiated for any of it, on either side.
  const after = [await sending(a.page), await sending(b.page)];
  expect(after.map((s) => s.descriptions)).toEqual(before.map((s) => s.descriptions));
  expect(after.map((s) => s.senders)).toEqual(before.map((s) => s.senders));

  // The next call, after a reload: the remembered camera and microphone.
  await hangUp(a.page);
  await backToIdle(a.page);
  await backToIdle(b.page);
  await a.page.reload();
  await connect(a, b);
  expect(await label(a.page, 'audio')).toBe('Fake Audio Input 2');
  expect(await label(a.page, 'video')).toBe('fake_device_2');
  await expect(a.page.getByTestId('device-notice')).toBeEmpty();
});
