// Calls through a TURN relay with short-lived credentials (relay-only mode), and the
// verification code. Each test starts its own coturn (Debian's `turnserver`, installed by
// scripts/install-tools test) as a private child process on a free loopback port, with a random
// shared secret and its own state folder, and its own Duet server pointed at it.
import { expect, test as base } from '@playwright/test';
import { Coturn } from './coturn';
import { DuetServer, befriend, newUser, type User } from './fixtures';
import { callState, connect, dial, expectState } from './calls';
import { expectedCode, rawTransportStats, shownCode, transportInfo } from './transport';

/** A private coturn, and a Duet in relay-only mode pointed at it, with users of its own; all
 * stopped after the test, whatever its outcome. */
interface RelayLab {
  coturn: Coturn;
  /** Starts Duet with `secret` (coturn's own unless given: a wrong one tests refusal). */
  start(secret?: string): Promise<DuetServer>;
  user(prefix: string, options?: { locale?: string }): Promise<User>;
}

const test = base.extend<{ relay: RelayLab }>({
  relay: async ({ browser }, use) => {
    const coturn = new Coturn();
    let server: DuetServer | undefined;
    const users: User[] = [];
    try {
      await coturn.start();
      await use({
        coturn,
        async start(secret = coturn.secret) {
          server = new DuetServer({
            DUET_TURN_URLS: coturn.url(),
            DUET_TURN_SECRET: secret,
            DUET_TURN_TTL_SECS: '600',
            DUET_ICE_TRANSPORT_POLICY: 'relay',
          });
          await server.start();
          return server;
        },
        async user(prefix, options) {
          const user = await newUser(browser, server!, prefix, options);
          for (const other of users) await befriend(other, user);
          users.push(user);
          return user;
        },
      });
    } finally {
      for (const user of users) await user.context.close();
      await server?.dispose();
      await coturn.stop();
    }
  },
});

test('relay-only call: both sides use TURN relay candidates, media flows, codes match', async ({ relay }) => {
  const { coturn } = relay;
  await relay.start();
  const a = await relay.user('a');
  const b = await relay.user('b', { locale: 'zh-CN' });

  await connect(a, b);
  for (const user of [a, b]) {
    await expect
      .poll(async () => (await transportInfo(user.page))?.local)
      .toBe('relay')
      .catch(async (error) => {
        console.log(`${user.name} transport stats: ${await rawTransportStats(user.page)}`);
        throw error;
      });
    const info = await transportInfo(user.page);
    expect(info?.local, `${user.name} local candidate`).toBe('relay');
    expect(info?.remote, `${user.name} remote candidate`).toBe('relay');
  }
  // coturn saw our credentials: `<expiry>:<duet user>`.
  expect(coturn.log).toMatch(new RegExp(`\\d+:${a.name}`));

  // The verification code: the same on both screens (in both languages), and what we compute
  // ourselves from the fingerprints each browser reports.
  const codeA = await shownCode(a.page);
  const codeB = await shownCode(b.page, '验证码');
  expect(codeA).toBe(codeB);
  const infoA = (await transportInfo(a.page))!;
  const infoB = (await transportInfo(b.page))!;
  // No man in the middle: each side's remote certificate is the other's local one.
  expect(infoA.remoteFingerprint).toBe(infoB.localFingerprint);
  expect(infoB.remoteFingerprint).toBe(infoA.localFingerprint);
  expect(codeA).toBe(expectedCode(infoA.localFingerprint, infoA.remoteFingerprint));
  expect(codeB).toBe(expectedCode(infoB.localFingerprint, infoB.remoteFingerprint));
  await expect(a.page.getByTestId('verification')).toContainText('hang up');
  await a.page.screenshot({ path: test.info().outputPath('relay-call.png') });
});

test('a wrong TURN secret ends the call with a clear message, not a silent "Connecting…"', async ({ relay }) => {
  const { coturn } = relay;
  await relay.start('not-the-secret-coturn-knows');
  const a = await relay.user('a');
  const b = await relay.user('b');

  await dial(a, b);
  await expectState(b.page, 'incoming');
  await b.page.getByTestId('accept').click();
  // Well before the 30 s connect timeout.
  await expectState(a.page, 'ended');
  await expectState(b.page, 'ended');
  const reasons = [await callState(a.page).getAttribute('data-reason'), await callState(b.page).getAttribute('data-reason')];
  expect(reasons).toContain('relay-refused');
  const refused = reasons[0] === 'relay-refused' ? a : b;
  await expect(callState(refused.page)).toContainText('The media relay refused the connection');
  await refused.page.screenshot({ path: test.info().outputPath('relay-refused.png') });
  expect(coturn.log).toMatch(/401|Unauthorized|check_stun_auth|cannot find credentials/i);
});
