// A figure, not an assertion: call set-up time (callee's click on Accept → first decoded remote
// frame) through a TURN relay (relay-only mode, coturn on loopback) beside the direct path, in
// one run, 8 calls each. Written to turn-setup-time.json and printed; docs/benchmarks.md quotes it.
import { writeFileSync } from 'node:fs';
import { expect, test, type Browser } from '@playwright/test';
import { Coturn } from './coturn';
import { DuetServer, befriend, newUser, type User } from './fixtures';
import { acceptAndTimeFirstFrame, backToIdle, dial, expectState, hangUp } from './calls';

const CALLS = 8;

async function measure(browser: Browser, server: DuetServer): Promise<number[]> {
  const users: User[] = [];
  try {
    const a = await newUser(browser, server, 'a');
    const b = await newUser(browser, server, 'b');
    await befriend(a, b);
    users.push(a, b);
    const samples: number[] = [];
    for (let i = 0; i < CALLS; i++) {
      await dial(a, b);
      await expectState(b.page, 'incoming');
      samples.push(await acceptAndTimeFirstFrame(b.page));
      await expectState(a.page, 'in-call');
      await hangUp(a.page);
      await expectState(b.page, 'ended', 'hangup');
      await backToIdle(a.page);
      await backToIdle(b.page);
    }
    return samples;
  } finally {
    for (const user of users) await user.context.close();
  }
}

function summary(samples: number[]) {
  const sorted = [...samples].sort((x, y) => x - y);
  const mid = sorted.length / 2;
  return {
    samples_ms: samples.map(Math.round),
    median_ms: Math.round((sorted[mid - 1] + sorted[mid]) / 2),
    min_ms: Math.round(sorted[0]),
    max_ms: Math.round(sorted[sorted.length - 1]),
  };
}

test('call set-up time over TURN beside the direct path', async ({ browser }) => {
  test.setTimeout(240_000);
  const coturn = new Coturn();
  const direct = new DuetServer();
  let relay: DuetServer | undefined;
  try {
    await coturn.start();
    await direct.start();
    relay = new DuetServer({
      DUET_TURN_URLS: coturn.url(),
      DUET_TURN_SECRET: coturn.secret,
      DUET_ICE_TRANSPORT_POLICY: 'relay',
    });
    await relay.start();
    const report = {
      direct: summary(await measure(browser, direct)),
      relay: summary(await measure(browser, relay)),
    };
    console.log(`call set-up (accept → first remote frame): ${JSON.stringify(report)}`);
    writeFileSync(test.info().outputPath('turn-setup-time.json'), JSON.stringify(report, null, 2));
    expect(report.relay.samples_ms).toHaveLength(CALLS);
  } finally {
    await direct.dispose();
    await relay?.dispose();
    await coturn.stop();
  }
});
