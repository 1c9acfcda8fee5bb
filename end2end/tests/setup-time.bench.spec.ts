// A figure, not an assertion: how long a call takes from the callee's click on Accept to the
// first decoded remote frame — Duet beside a hand-written plain-JS page (bench/reference/call.html)
// doing what a minimal app must do, over the same server and signaling socket, alternating, 20
// calls each, in one run. Written to the test's output (setup-time.json) and printed;
// docs/benchmarks.md quotes it.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Page } from '@playwright/test';
import { test, expect, newUser, type User } from './fixtures';
import { acceptAndTimeFirstFrame, backToIdle, dial, expectState, firstFrameAt, hangUp } from './calls';
import { clearTimeline, installCallTimeline, mergedTimeline } from './call-timeline';

const ROUNDS = Number(process.env.SETUP_ROUNDS ?? 20);
const REFERENCE = readFileSync(path.join(__dirname, '..', '..', 'bench', 'reference', 'call.html'), 'utf8');
const REFERENCE_SCRIPT = /<script>([\s\S]*)<\/script>/.exec(REFERENCE)![1];

async function duetCall(a: User, b: User, onStart?: (epochMs: number) => void): Promise<number> {
  await dial(a, b);
  await expectState(b.page, 'incoming');
  onStart?.(await b.page.evaluate(() => Date.now()));
  const elapsed = await acceptAndTimeFirstFrame(b.page);
  await expectState(a.page, 'in-call');
  await hangUp(a.page);
  await expectState(b.page, 'ended', 'hangup');
  await backToIdle(a.page);
  await backToIdle(b.page);
  return elapsed;
}

/** Opens the reference page's script on Duet's origin (a page Duet serves, then the script), so
 * its WebSocket carries the session cookie and passes the Origin check. Evaluated by the test
 * harness rather than added as an inline `<script>`: Duet's pages allow no inline script that
 * it did not write (docs/security.md). */
async function openReference(user: User) {
  await user.page.goto('/healthz');
  await user.page.evaluate(() => {
    document.body.innerHTML = '<video id="remote" autoplay playsinline muted></video>';
  });
  await user.page.evaluate(`${REFERENCE_SCRIPT}\n;undefined`);
  await user.page.evaluate(() => (window as any).ready);
}

async function referenceCall(c: User, d: User, round: number, onStart?: (epochMs: number) => void): Promise<number> {
  const callId = `ref-${round}-${Date.now()}`;
  await c.page.evaluate(([name, id]) => (window as any).dial(name, id), [d.name, callId]);
  await expect.poll(() => d.page.evaluate(() => (window as any).bench.ringing)).toBe(true);
  const frame = firstFrameAt(d.page);
  const started = await d.page.evaluate(() => {
    const now = performance.now();
    (window as any).__acceptEpoch = Date.now();
    (window as any).accept();
    return now;
  });
  onStart?.(await d.page.evaluate(() => (window as any).__acceptEpoch));
  const elapsed = (await frame) - started;
  await c.page.evaluate(() => (window as any).hangUp());
  await d.page.evaluate(() => (window as any).hangUp(false));
  return elapsed;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  return (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2;
};

test('call set-up time, accept to first remote frame: Duet beside a hand-written page', async ({ browser, server, users }) => {
  test.setTimeout(360_000);
  const [a, b] = await users(2);
  const c = await newUser(browser, server, 'refc', { open: false });
  const d = await newUser(browser, server, 'refd', { open: false });
  try {
    await openReference(c);
    await openReference(d);
    const duet: number[] = [];
    const reference: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which goes first, so neither always runs on a machine warmed by the other.
      if (round % 2 === 0) {
        duet.push(await duetCall(a, b));
        reference.push(await referenceCall(c, d, round));
      } else {
        reference.push(await referenceCall(c, d, round));
        duet.push(await duetCall(a, b));
      }
    }
    // One more call, to see where its time goes (the timeline's hooks poll statistics, so they
    // are installed only now, not during the measured rounds).
    for (const user of [a, b]) {
      await installCallTimeline(user.context);
      await user.page.reload();
      await clearTimeline(user.page);
    }
    let t0 = 0;
    const timed = await duetCall(a, b, (epoch) => (t0 = epoch));
    const merged = await mergedTimeline(t0, [
      { who: 'caller', page: a.page },
      { who: 'callee', page: b.page },
    ]);
    // From the click as the page received it, as `timed` counts (Playwright's own checks before
    // the click take a while under load).
    const click = merged.find((m) => m.who === 'callee' && m.what === 'accept click')?.ms ?? 0;
    const timeline = merged
      .map((m) => ({ ...m, ms: Math.round(m.ms - click) }))
      .filter((m) => m.ms >= 0 && m.ms <= timed + 50);
    console.log(`one Duet call (${Math.round(timed)} ms), from the callee's Accept click:`);
    for (const m of timeline) console.log(`  ${String(m.ms).padStart(6)} ms  ${m.who.padEnd(6)}  ${m.what}`);
    // The same hooks on the hand-written page, for a side-by-side account of where time goes.
    for (const user of [c, d]) {
      await installCallTimeline(user.context);
      await openReference(user);
      await clearTimeline(user.page);
    }
    let r0 = 0;
    const referenceTimed = await referenceCall(c, d, ROUNDS, (epoch) => (r0 = epoch));
    const referenceTimeline = (
      await mergedTimeline(r0, [
        { who: 'caller', page: c.page },
        { who: 'callee', page: d.page },
      ])
    )
      .map((m) => ({ ...m, ms: Math.round(m.ms) }))
      .filter((m) => m.ms >= 0 && m.ms <= referenceTimed + 50);
    console.log(`one reference call (${Math.round(referenceTimed)} ms), from its accept:`);
    for (const m of referenceTimeline) console.log(`  ${String(m.ms).padStart(6)} ms  ${m.who.padEnd(6)}  ${m.what}`);
    const summary = (xs: number[]) => ({
      median_ms: Math.round(median(xs)),
      min_ms: Math.round(Math.min(...xs)),
      max_ms: Math.round(Math.max(...xs)),
      samples_ms: xs.map(Math.round),
    });
    const report = {
      rounds: ROUNDS,
      duet: summary(duet),
      reference: summary(reference),
      ratio: +(median(duet) / median(reference)).toFixed(2),
      timeline_of_one_duet_call: timeline,
      timeline_of_one_reference_call: referenceTimeline,
    };
    console.log(`call set-up (accept → first remote frame): ${JSON.stringify(report)}`);
    writeFileSync(test.info().outputPath('setup-time.json'), JSON.stringify(report, null, 2));
    expect(duet).toHaveLength(ROUNDS);
    expect(reference).toHaveLength(ROUNDS);
  } finally {
    await c.context.close();
    await d.context.close();
  }
});
