import { test, expect } from './fixtures';
import type { Page } from '@playwright/test';
import {
  backToIdle,
  connect,
  dial,
  expectMediaFlowing,
  expectNoLiveCapture,
  expectState,
  hangUp,
} from './calls';
import { deviceTracks } from './device-ledger';

test('A calls B, B accepts, both see and hear each other', async ({ users }) => {
  const [a, b] = await users(2);
  await expectNoLiveCapture(a.page);
  await expectNoLiveCapture(b.page);

  await dial(a, b);
  await expectState(a.page, 'outgoing');
  await expectState(b.page, 'incoming');
  await expect(b.page.getByTestId('call-view')).toContainText(a.name);
  await b.page.screenshot({ path: test.info().outputPath('incoming.png') });
  // The callee's camera opens only after Accept (the caller's may open while it rings, so the
  // call connects sooner: it is the caller's own choice to call).
  expect((await deviceTracks(b.page)).obtained).toBe(0);

  await b.page.getByTestId('accept').click();
  await expectState(a.page, 'in-call');
  await expectState(b.page, 'in-call');
  await expectMediaFlowing(a.page);
  await expectMediaFlowing(b.page);
  await a.page.screenshot({ path: test.info().outputPath('in-call.png') });
});

test('hang up from either side releases the camera, and calling again works three times', async ({ users }) => {
  const [a, b] = await users(2);
  for (let round = 0; round < 3; round++) {
    await connect(a, b);
    // Alternate who hangs up.
    const [ender, other] = round % 2 === 0 ? [a, b] : [b, a];
    await hangUp(ender.page);
    await expectState(other.page, 'ended', 'hangup');
    await expectNoLiveCapture(a.page);
    await expectNoLiveCapture(b.page);
    await backToIdle(a.page);
    await backToIdle(b.page);
    await expectNoLiveCapture(a.page);
    await expectNoLiveCapture(b.page);
  }
});

test('mute and camera-off show on the other side, and unmuting restores them', async ({ users }) => {
  const [a, b] = await users(2);
  await connect(a, b);
  await a.page.getByTestId('toggle-mic').click();
  await expect(b.page.getByTestId('remote-muted')).toBeVisible();
  await a.page.getByTestId('toggle-camera').click();
  await expect(b.page.getByTestId('remote-camera-off')).toBeVisible();
  await b.page.screenshot({ path: test.info().outputPath('remote-muted.png') });
  await a.page.getByTestId('toggle-mic').click();
  await a.page.getByTestId('toggle-camera').click();
  await expect(b.page.getByTestId('remote-muted')).toHaveCount(0);
  await expect(b.page.getByTestId('remote-camera-off')).toHaveCount(0);
  await expectMediaFlowing(b.page);
});

/** What the page's peer connection sends with: how many senders, the kinds of live tracks on
 * them, and its local description (a renegotiation would change it). */
async function sending(page: Page) {
  return page.evaluate(() => {
    const pc = (window as unknown as { __duetPc: RTCPeerConnection }).__duetPc;
    const senders = pc.getSenders();
    return {
      senders: senders.length,
      live: senders.filter((s) => s.track?.readyState === 'live').map((s) => s.track!.kind).sort(),
      description: pc.localDescription?.sdp,
    };
  });
}

/** Video frames the local preview has shown so far. */
const previewFrames = (page: Page) =>
  page.getByTestId('local-video').evaluate((v: HTMLVideoElement) => v.getVideoPlaybackQuality().totalVideoFrames);

test('camera off stops the camera (its light goes out); on again opens it anew on the same sender, without renegotiating', async ({ users }) => {
  const [a, b] = await users(2);
  await connect(a, b);
  const before = await sending(a.page);
  expect(before.live).toEqual(['audio', 'video']);

  await a.page.getByTestId('toggle-camera').click();
  await expect(b.page.getByTestId('remote-camera-off')).toBeVisible();
  // Every device track the page ever obtained: only the microphone is still live.
  await expect.poll(async () => (await deviceTracks(a.page)).liveKinds).toEqual(['audio']);
  expect((await sending(a.page)).live).toEqual(['audio']);
  // Mute stays instant: the microphone is disabled, not stopped.
  await a.page.getByTestId('toggle-mic').click();
  expect((await deviceTracks(a.page)).liveKinds).toEqual(['audio']);
  await a.page.getByTestId('toggle-mic').click();

  await a.page.getByTestId('toggle-camera').click();
  await expect.poll(async () => (await deviceTracks(a.page)).liveKinds.sort()).toEqual(['audio', 'video']);
  expect((await deviceTracks(a.page)).obtained, 'a second camera track, opened anew').toBe(3);
  const after = await sending(a.page);
  expect(after.live).toEqual(['audio', 'video']);
  expect(after.senders, 'the same senders').toBe(before.senders);
  expect(after.description, 'no renegotiation').toBe(before.description);
  // B sees the new camera; A's preview shows it too.
  await expect(b.page.getByTestId('remote-camera-off')).toHaveCount(0);
  await expectMediaFlowing(b.page);
  const shown = await previewFrames(a.page);
  await expect.poll(() => previewFrames(a.page)).toBeGreaterThan(shown);

  // Off and on again quickly: one camera track live at the end, none left over.
  await a.page.getByTestId('toggle-camera').click();
  await a.page.getByTestId('toggle-camera').click();
  await a.page.getByTestId('toggle-camera').click();
  await expect(b.page.getByTestId('remote-camera-off')).toBeVisible();
  await expect.poll(async () => (await deviceTracks(a.page)).liveKinds).toEqual(['audio']);

  await hangUp(a.page);
  await expectNoLiveCapture(a.page);
});

test('keyboard shortcuts: Esc declines a ringing call, M mutes, V turns the camera off; typing in a field is only typing', async ({ users }) => {
  const [a, b] = await users(2);
  await dial(a, b);
  await expectState(b.page, 'incoming');
  await b.page.keyboard.press('Escape');
  await expectState(a.page, 'ended', 'declined');
  await backToIdle(a.page);
  await backToIdle(b.page);

  await connect(a, b);
  // Typed into the chat box, M and V are letters.
  await a.page.getByTestId('chat-toggle').click();
  await a.page.getByTestId('chat-input').pressSequentially('mv');
  await expect(a.page.getByTestId('chat-input')).toHaveValue('mv');
  await expect(b.page.getByTestId('remote-muted')).toHaveCount(0);
  await expect(b.page.getByTestId('remote-camera-off')).toHaveCount(0);

  await a.page.getByTestId('chat-close').click();
  await a.page.keyboard.press('m');
  await expect(b.page.getByTestId('remote-muted')).toBeVisible();
  await expect(a.page.getByTestId('toggle-mic')).toHaveAttribute('aria-pressed', 'true');
  await a.page.keyboard.press('v');
  await expect(b.page.getByTestId('remote-camera-off')).toBeVisible();
  await expect.poll(async () => (await deviceTracks(a.page)).liveKinds).toEqual(['audio']);
  await a.page.keyboard.press('M');
  await a.page.keyboard.press('V');
  await expect(b.page.getByTestId('remote-muted')).toHaveCount(0);
  await expect(b.page.getByTestId('remote-camera-off')).toHaveCount(0);
  // The keys are written where people look for them.
  await a.page.getByTestId('shortcuts').locator('summary').click();
  await expect(a.page.getByTestId('shortcuts')).toContainText('M mute or unmute');
  await a.page.screenshot({ path: test.info().outputPath('shortcuts.png') });
});

test("the callee sees and hears the caller while its own camera is still opening, and is seen once it opens", async ({ users }) => {
  const [a, b] = await users(2);
  // B's camera is slow to open (a real webcam warming up, or a permission prompt): its
  // getUserMedia waits until the test lets it go.
  await b.context.addInitScript(() => {
    const w = window as any;
    const open = MediaDevices.prototype.getUserMedia;
    MediaDevices.prototype.getUserMedia = async function (this: MediaDevices, constraints?: MediaStreamConstraints) {
      w.__cameraAsked = true;
      await new Promise((release) => (w.__openCamera = release));
      return open.call(this, constraints);
    };
  });
  await b.page.reload();

  await dial(a, b);
  await expectState(b.page, 'incoming');
  await b.page.getByTestId('accept').click();
  await expect.poll(() => b.page.evaluate(() => (window as any).__cameraAsked === true)).toBe(true);
  // The call is up and A's picture and voice arrive, with no camera or microphone open on B.
  await expect(b.page.locator('.in-call')).toHaveAttribute('data-phase', 'connected');
  await expectMediaFlowing(b.page);
  expect((await deviceTracks(b.page)).obtained).toBe(0);

  // B's devices open: they join the senders B offered with, and A sees and hears B.
  await b.page.evaluate(() => (window as any).__openCamera());
  await expectMediaFlowing(a.page);
  await expect(a.page.getByTestId('remote-camera-off')).toHaveCount(0);
  expect((await deviceTracks(b.page)).obtained).toBe(2);

  await hangUp(b.page);
  await expectState(a.page, 'ended', 'hangup');
  await expectNoLiveCapture(b.page);
  await expectNoLiveCapture(a.page);
});

/** Records every oscillator the page's Web Audio makes, to tell which tones are sounding. */
async function listenToTones(user: { context: import('@playwright/test').BrowserContext; page: Page }) {
  await user.context.addInitScript(() => {
    const w = window as any;
    w.__tones = [];
    const create = AudioContext.prototype.createOscillator;
    AudioContext.prototype.createOscillator = function (this: AudioContext) {
      const oscillator = create.call(this);
      const entry = { oscillator, started: false, stopped: false };
      w.__tones.push(entry);
      const [start, stop] = [oscillator.start.bind(oscillator), oscillator.stop.bind(oscillator)];
      oscillator.start = (when?: number) => ((entry.started = true), start(when));
      oscillator.stop = (when?: number) => ((entry.stopped = true), stop(when));
      return oscillator;
    };
  });
  await user.page.reload();
}

/** The frequencies sounding on the page now (started, not stopped, on a running context). */
const sounding = (page: Page) =>
  page.evaluate(() =>
    (window as any).__tones
      .filter((t: any) => t.started && !t.stopped && t.oscillator.context.state === 'running')
      .map((t: any) => t.oscillator.frequency.value),
  );

test('the caller hears ringback while the other phone rings; it stops on answer and on decline', async ({ users }) => {
  const [a, b] = await users(2);
  await listenToTones(a);
  await dial(a, b);
  await expectState(b.page, 'incoming');
  await expect.poll(() => sounding(a.page)).toEqual([425]);
  await b.page.getByTestId('accept').click();
  await expectState(a.page, 'in-call');
  await expect.poll(() => sounding(a.page)).toEqual([]);
  await hangUp(a.page);
  await backToIdle(a.page);
  await backToIdle(b.page);

  await dial(a, b);
  await expect.poll(() => sounding(a.page)).toEqual([425]);
  await b.page.getByTestId('decline').click();
  await expectState(a.page, 'ended', 'declined');
  await expect.poll(() => sounding(a.page)).toEqual([]);
});

test('focus follows the call: Cancel while calling, Accept while ringing, Mute in the call, Call again after it', async ({ users }) => {
  const [a, b] = await users(2);
  await dial(a, b);
  await expect(a.page.getByTestId('cancel')).toBeFocused();
  await expect(b.page.getByTestId('accept')).toBeFocused();
  // Answered from the keyboard, since Accept has the focus.
  await b.page.keyboard.press('Enter');
  await expectState(b.page, 'in-call');
  await expectState(a.page, 'in-call');
  await expect(a.page.getByTestId('toggle-mic')).toBeFocused();
  await expect(b.page.getByTestId('toggle-mic')).toBeFocused();
  await hangUp(a.page);
  await expect(a.page.getByTestId('call-again')).toBeFocused();
  await expect(b.page.getByTestId('call-again')).toBeFocused();
});

/** Records the peer connections the page makes and the types of the signaling frames it gets. */
async function watchSignaling(user: { context: import('@playwright/test').BrowserContext; page: Page }) {
  await user.context.addInitScript(() => {
    const w = window as any;
    w.__pcs = [];
    w.__received = [];
    const Native = RTCPeerConnection;
    w.RTCPeerConnection = function (config?: RTCConfiguration) {
      const pc = new Native(config);
      w.__pcs.push(pc);
      return pc;
    } as any;
    w.RTCPeerConnection.prototype = Native.prototype;
    const NativeSocket = WebSocket;
    w.WebSocket = function (...args: any[]) {
      const socket = new (NativeSocket as any)(...args);
      socket.addEventListener('message', (e: MessageEvent) => {
        try {
          w.__received.push(JSON.parse(e.data).type);
        } catch {
          w.__received.push('?');
        }
      });
      return socket;
    } as any;
    w.WebSocket.prototype = NativeSocket.prototype;
    Object.assign(w.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
  });
  await user.page.reload();
}

const received = (page: Page): Promise<string[]> => page.evaluate(() => (window as any).__received);
/** The state of the page's newest peer connection: its local description and whether it is closed. */
const newestPc = (page: Page) =>
  page.evaluate(() => {
    const pc = (window as any).__pcs.at(-1) as RTCPeerConnection | undefined;
    return pc && { local: pc.localDescription?.type ?? null, state: pc.signalingState, gathering: pc.iceGatheringState };
  });

test('the callee prepares its offer while it rings, sends nothing before Accept, and lets go of it when declined', async ({ users }) => {
  const [a, b] = await users(2);
  await watchSignaling(a);
  await watchSignaling(b);

  await dial(a, b);
  await expectState(b.page, 'incoming');
  // B's connection, its offer and its candidates are ready while it rings, without a device…
  await expect
    .poll(() => newestPc(b.page))
    .toEqual({ local: 'offer', state: 'have-local-offer', gathering: 'complete' });
  expect((await deviceTracks(b.page)).obtained).toBe(0);

  // Declined: the prepared connection is closed…
  await b.page.getByTestId('decline').click();
  await expectState(a.page, 'ended', 'declined');
  await expect.poll(() => newestPc(b.page)).toMatchObject({ local: 'offer', state: 'closed' });
  // …and none of it reached A: B's frames arrive in order, and the decline came after all of
  // them, so an offer or a candidate sent before it would be here.
  const beforeAnswer = await received(a.page);
  expect(beforeAnswer).toContain('ringing');
  expect(beforeAnswer).toContain('decline');
  expect(beforeAnswer).not.toContain('offer');
  expect(beforeAnswer).not.toContain('candidate');
  await backToIdle(a.page);
  await backToIdle(b.page);

  // Accepted: the offer follows the accept, and the call connects.
  await a.page.evaluate(() => ((window as any).__received.length = 0));
  await dial(a, b);
  await expectState(b.page, 'incoming');
  await expect.poll(() => newestPc(b.page)).toMatchObject({ local: 'offer', state: 'have-local-offer' });
  await b.page.getByTestId('accept').click();
  await expectState(a.page, 'in-call');
  await expectMediaFlowing(a.page);
  await expectMediaFlowing(b.page);
  const frames = await received(a.page);
  expect(frames.indexOf('accept')).toBeGreaterThanOrEqual(0);
  expect(frames.indexOf('offer')).toBeGreaterThan(frames.indexOf('accept'));
});

test('every change of the call is said in one live region that stays in the page', async ({ users }) => {
  const [a, b] = await users(2);
  const region = a.page.getByTestId('call-announcement');
  await expect(region).toHaveAttribute('role', 'status');
  const first = await region.elementHandle();
  const sameNode = () => region.evaluate((node, original) => node === original, first);

  await dial(a, b);
  await expect(region).toHaveText(`Calling ${b.name}…`);
  await expect(b.page.getByTestId('call-announcement')).toHaveText(`${a.name} is calling`);
  await b.page.getByTestId('accept').click();
  await expect(region).toHaveText('Connected');
  // One voice: the panes' own status texts are not live regions as well.
  expect(await livePaneTexts(a.page)).toBe(0);
  await hangUp(b.page);
  await expect(region).toHaveText(`${b.name} hung up.`);
  await expect(b.page.getByTestId('call-announcement')).toHaveText('You hung up.');
  expect(await livePaneTexts(a.page)).toBe(0);
  // The same element all along: its text changed, so it was announced each time.
  expect(await sameNode()).toBe(true);
});

/** Live regions inside the call's panes (the calling, ringing, ended cards and the call itself). */
const livePaneTexts = (page: Page) =>
  page.evaluate(
    () =>
      document.querySelectorAll(
        ':is(.call-card, .in-call):is([role="status"], [aria-live]), :is(.call-card, .in-call) :is([role="status"], [aria-live])',
      ).length,
  );

test('full screen: the call fills the screen with its controls, media goes on, and the button or the browser brings it back', async ({ users }) => {
  const [a, b] = await users(2);
  await connect(a, b);
  const button = a.page.getByTestId('full-screen');
  const inFullScreen = () =>
    a.page.evaluate(() => document.fullscreenElement?.classList.contains('in-call') ?? false);
  await expect(button).toHaveAttribute('aria-label', 'Full screen');

  await button.click();
  await expect.poll(inFullScreen).toBe(true);
  await expect(button).toHaveAttribute('aria-pressed', 'true');
  await expect(button).toHaveAttribute('aria-label', 'Exit full screen');
  await expect(a.page.getByTestId('hangup')).toBeVisible();
  await expectMediaFlowing(a.page);
  await a.page.screenshot({ path: test.info().outputPath('full-screen.png') });

  await button.click();
  await expect.poll(inFullScreen).toBe(false);
  await expect(button).toHaveAttribute('aria-pressed', 'false');

  // The browser's own way out (Esc, or its "exit full screen" bar) is followed too.
  await button.click();
  await expect.poll(inFullScreen).toBe(true);
  await a.page.evaluate(() => document.exitFullscreen());
  await expect.poll(inFullScreen).toBe(false);
  await expect(button).toHaveAttribute('aria-pressed', 'false');
  await expect(button).toHaveAttribute('aria-label', 'Full screen');
  await expectMediaFlowing(a.page);
});
