import { test, expect } from './fixtures';
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
