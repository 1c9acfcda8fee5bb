// A figure, not an assertion: how long a call takes to come back after a network change — B's
// link goes away for 5 s and returns with a new address — measured from the link's return to
// the first newly decoded frame on both sides, five times in one call. Beside it, in the same
// lab and run, the alternative a user would otherwise have: hanging up and calling again (the
// callee's Accept to the first decoded frame of a fresh call). Written to reconnect.json in the
// test's output and printed; docs/benchmarks.md quotes it.
import { writeFileSync } from 'node:fs';
import type { Page } from '@playwright/test';
import { acceptAndTimeFirstFrame, backToIdle, connect, dial, expectState, hangUp } from './calls';
import { inboundTotals } from './net-stats';
import { expect, test } from './netns';

const OUTAGES = 5;

/** Wall-clock time (same host as the test) at which `page` decodes a frame beyond `baseline`. */
function frameAfter(page: Page, baseline: number): Promise<number> {
  return page.evaluate(async (baseline) => {
    for (;;) {
      const pc = (window as any).__duetPc as RTCPeerConnection | undefined;
      let frames = 0;
      if (pc) {
        (await pc.getStats()).forEach((s: any) => {
          if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded ?? 0;
        });
      }
      if (frames > baseline) return Date.now();
      await new Promise((r) => setTimeout(r, 10));
    }
  }, baseline);
}

const median = (values: number[]) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)];

test('recovery after a network change, beside calling again', async ({ lab }) => {
  test.setTimeout(240_000);
  const a = await lab.newUser('a');
  const b = await lab.newUser('b');
  await connect(a, b);

  const recoveries: number[] = [];
  for (let outage = 0; outage < OUTAGES; outage++) {
    await lab.linkDown('b');
    await a.page.waitForTimeout(5_000); // the outage
    const frames = [(await inboundTotals(a.page)).framesDecoded, (await inboundTotals(b.page)).framesDecoded];
    const back = Date.now();
    await lab.linkUp('b', { newAddress: true });
    const resumed = await Promise.all([frameAfter(a.page, frames[0]), frameAfter(b.page, frames[1])]);
    recoveries.push(Math.max(...resumed) - back);
    await expect(a.page.locator('.in-call')).toHaveAttribute('data-phase', 'connected');
    await expect(b.page.locator('.in-call')).toHaveAttribute('data-phase', 'connected');
  }
  await hangUp(a.page);
  await backToIdle(a.page);
  await backToIdle(b.page);

  const redials: number[] = [];
  for (let call = 0; call < OUTAGES; call++) {
    await dial(a, b);
    await expectState(b.page, 'incoming');
    redials.push(await acceptAndTimeFirstFrame(b.page));
    await hangUp(a.page);
    await backToIdle(a.page);
    await backToIdle(b.page);
  }

  const result = {
    outageMs: 5_000,
    recoveryMs: recoveries,
    recoveryMedianMs: median(recoveries),
    redialMs: redials.map(Math.round),
    redialMedianMs: Math.round(median(redials)),
  };
  writeFileSync(test.info().outputPath('reconnect.json'), JSON.stringify(result, null, 2));
  console.log(JSON.stringify(result));
  test.info().annotations.push({ type: 'reconnect', description: JSON.stringify(result) });
});
