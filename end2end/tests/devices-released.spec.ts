// Every way a call can end leaves no camera or microphone open on either side (issue #10).
// The device ledger (device-ledger.ts) counts every track the page obtained — getUserMedia,
// getDisplayMedia and clones — so a copy the app forgot about is caught here.
import { test, expect, type User } from './fixtures';
import { backToIdle, connect, dial, expectState, hangUp } from './calls';
import { deviceTracks, expectNoLiveDeviceTracks } from './device-ledger';

/** Both sides hold devices during the call (so the test below it is not vacuous). */
async function expectDevicesInUse(...users: User[]) {
  for (const user of users) {
    const tracks = await deviceTracks(user.page);
    expect(tracks.live, `${user.name} should be using camera and microphone`).toBeGreaterThanOrEqual(2);
  }
}

async function expectReleased(...users: User[]) {
  for (const user of users) await expectNoLiveDeviceTracks(user.page);
}

for (const ender of ['caller', 'callee'] as const) {
  test(`hang up by the ${ender}: no device track stays live, over three calls`, async ({ users }) => {
    const [a, b] = await users(2);
    for (let round = 0; round < 3; round++) {
      await connect(a, b);
      await expectDevicesInUse(a, b);
      const [hanger, other] = ender === 'caller' ? [a, b] : [b, a];
      await hangUp(hanger.page);
      await expectState(other.page, 'ended', 'hangup');
      await expectReleased(a, b);
      await backToIdle(a.page);
      await backToIdle(b.page);
    }
    // Three calls, and every track they opened (clones included) has ended.
    for (const user of [a, b]) {
      const tracks = await deviceTracks(user.page);
      test.info().annotations.push({ type: 'tracks', description: `${user.name}: ${JSON.stringify(tracks)}` });
      expect(tracks.obtained).toBeGreaterThanOrEqual(6);
      expect(tracks.live).toBe(0);
    }
  });
}

test('decline: neither side keeps a device, and the callee never opened one', async ({ users }) => {
  const [a, b] = await users(2);
  await dial(a, b);
  await expectState(b.page, 'incoming');
  await b.page.getByTestId('decline').click();
  await expectState(a.page, 'ended', 'declined');
  await expectReleased(a, b);
  expect((await deviceTracks(b.page)).obtained).toBe(0);
});

test('cancel: neither side keeps a device', async ({ users }) => {
  const [a, b] = await users(2);
  await dial(a, b);
  await expectState(b.page, 'incoming');
  await a.page.getByTestId('cancel').click();
  await expect(b.page.getByTestId('call-view')).not.toHaveAttribute('data-state', 'incoming');
  await expectReleased(a, b);
  expect((await deviceTracks(b.page)).obtained).toBe(0);
});

test('no answer: the caller gives up and says so, and neither side keeps a device', async ({ users }) => {
  const [a, b] = await users(2);
  await dial(a, b);
  await expectState(b.page, 'incoming');
  // The caller gives up after 30 s of ringing, says so, and the callee stops ringing too.
  await expect(a.page.getByTestId('call-view')).toHaveAttribute('data-reason', 'no-answer', { timeout: 45_000 });
  await expectState(a.page, 'ended', 'no-answer');
  await expect(b.page.getByTestId('call-view')).not.toHaveAttribute('data-state', 'incoming');
  await expectReleased(a, b);
  expect((await deviceTracks(b.page)).obtained).toBe(0);
});

test('a lost connection: the side left alone releases its devices', async ({ users }) => {
  // ICE takes its time to call a silent path failed, then one restart is tried (call.rs).
  test.setTimeout(150_000);
  const [a, b] = await users(2);
  await connect(a, b);
  await expectDevicesInUse(a, b);
  // B vanishes without a goodbye: its peer connection and its signaling socket go at once, as
  // when a laptop lid closes. A must give the call up by itself.
  await b.context.setOffline(true);
  await b.page.evaluate(() => (window as any).__duetPc?.close());
  const since = Date.now();
  await expect(a.page.getByTestId('call-view')).toHaveAttribute('data-state', 'ended', { timeout: 120_000 });
  await expect(a.page.getByTestId('call-view')).toHaveAttribute('data-reason', 'connection-lost');
  await expect(a.page.getByTestId('call-again')).toBeVisible();
  test.info().annotations.push({ type: 'lost after', description: `${Date.now() - since} ms` });
  await expectReleased(a);
});

test('logout during a call releases the devices on both sides', async ({ users }) => {
  const [a, b] = await users(2);
  await connect(a, b);
  await expectDevicesInUse(a, b);
  await a.page.getByTestId('logout').click();
  await expect(a.page.getByTestId('login')).toBeVisible();
  await expectState(b.page, 'ended');
  await expectReleased(a, b);
});

test('closing the tab during a call releases the other side, and leaving the ended card keeps it so', async ({ users }) => {
  const [a, b] = await users(2);
  await connect(a, b);
  await expectDevicesInUse(a, b);
  await b.page.close();
  await expectState(a.page, 'ended');
  await expectReleased(a);
  await backToIdle(a.page);
  await expectReleased(a);
});
