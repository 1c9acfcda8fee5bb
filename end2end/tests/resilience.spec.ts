import { test, expect, DuetServer, befriend, newUser } from './fixtures';
import { connect, expectState, expectFramesKeepDecoding, expectMediaFlowing, backToIdle, hangUp } from './calls';

test('the server dies and comes back during a call: media keeps flowing, clients reconnect', async ({ browser }) => {
  // This test kills its server, so it gets its own.
  const server = new DuetServer();
  await server.start();
  try {
    const a = await newUser(browser, server, 'a');
    const b = await newUser(browser, server, 'b');
    await befriend(a, b);
    await connect(a, b);

    await server.stop('SIGKILL');
    await expect(a.page.getByTestId('offline-banner')).toBeVisible();
    await expect(b.page.getByTestId('offline-banner')).toBeVisible();
    // Media is peer to peer: frames keep being decoded while signaling is down.
    await expectFramesKeepDecoding(a.page, b.page);
    await expectState(a.page, 'in-call');
    await a.page.screenshot({ path: test.info().outputPath('signaling-down.png') });

    await server.start();
    await expect(a.page.getByTestId('offline-banner')).toHaveCount(0, { timeout: 30_000 });
    await expect(b.page.getByTestId('offline-banner')).toHaveCount(0, { timeout: 30_000 });
    await expectMediaFlowing(a.page);
    await expectState(b.page, 'in-call');

    // Signaling works again: hang up reaches the other side, and a new call connects.
    await hangUp(a.page);
    await expectState(b.page, 'ended', 'hangup');
    await backToIdle(a.page);
    await backToIdle(b.page);
    await connect(b, a);
    await a.context.close();
    await b.context.close();
  } finally {
    await server.dispose();
  }
});
