// A figure, not an assertion: how long a call takes from the callee's click on Accept to the
// first decoded remote frame — Duet beside a hand-written plain-JS page (bench/reference/call.html)
// doing what a minimal app must do, over the same server and signaling socket, 20 calls each,
// taking turns, in one run. Both are accepted with a click on their Accept button and timed from
// the click as the page receives it; the reference is also timed accepted by a call from the test
// (no input events), as this benchmark did until 2026-12-04. Written to the test's output
// (setup-time.json) and printed; docs/benchmarks.md quotes it.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Page } from '@playwright/test';
import { test, expect, newUser, type User } from './fixtures';
import { acceptAndTimeFirstFrame, backToIdle, dial, expectState, firstFrameAt, hangUp } from './calls';
import { clearTimeline, installCallTimeline, mergedTimeline } from './call-timeline';

const ROUNDS = Number(process.env.SETUP_ROUNDS ?? 20);
const REFERENCE = readFileSync(path.join(__dirname, '..', '..', 'bench', 'reference', 'call.html'), 'utf8');
const REFERENCE_SCRIPT = /<script>([\s\S]*)<\/script>/.exec(REFERENCE)![1];
// Its remote <video> and Accept button.
const REFERENCE_BODY = /<\/title>([\s\S]*)<script>/.exec(REFERENCE)![1];

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
  await user.page.evaluate((body) => {
    document.body.innerHTML = body;
  }, REFERENCE_BODY);
  await user.page.evaluate(`${REFERENCE_SCRIPT}\n;undefined`);
  await user.page.evaluate(() => (window as any).ready);
}

/** A call on the hand-written page, accepted with a click on its Accept button as Duet's is
 * (`click`), or by calling its `accept()` from the test, which spares the page the input
 * events of a click (`call`: how this benchmark accepted until 2026-12-04). */
async function referenceCall(
  c: User,
  d: User,
  round: number,
  how: 'click' | 'call',
  onStart?: (epochMs: number) => void,
): Promise<number> {
  const callId = `ref-${how}-${round}-${Date.now()}`;
  await c.page.evaluate(([name, id]) => (window as any).dial(name, id), [d.name, callId]);
  await expect.poll(() => d.page.evaluate(() => (window as any).bench.ringing)).toBe(true);
  let elapsed: number;
  if (how === 'click') {
    if (onStart) onStart(await d.page.evaluate(() => Date.now()));
    elapsed = await acceptAndTimeFirstFrame(d.page);
  } else {
    const frame = firstFrameAt(d.page);
    const started = await d.page.evaluate(() => {
      const now = performance.now();
      (window as any).__acceptEpoch = Date.now();
      (window as any).accept();
      return now;
    });
    onStart?.(await d.page.evaluate(() => (window as any).__acceptEpoch));
    elapsed = (await frame) - started;
  }
  await c.page.evaluate(() => (window as any).hangUp());
  await d.page.evaluate(() => (window as any).hangUp(false));
  return elapsed;
}

/** Both pages' timelines on one clock, from the callee's click on Accept as its page received it
 * (Playwright's own checks before the click take a while under load), up to the first frame. */
async function timelineFromClick(epochMs: number, elapsedMs: number, caller: Page, callee: Page) {
  const merged = await mergedTimeline(epochMs, [
    { who: 'caller', page: caller },
    { who: 'callee', page: callee },
  ]);
  const click = merged.find((m) => m.who === 'callee' && m.what === 'accept click')?.ms ?? 0;
  return merged
    .map((m) => ({ ...m, ms: Math.round(m.ms - click) }))
    .filter((m) => m.ms >= 0 && m.ms <= elapsedMs + 50);
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
    const referenceCalled: number[] = [];
    const kinds = [
      async (round: number) => duet.push(await duetCall(a, b)),
      async (round: number) => reference.push(await referenceCall(c, d, round, 'click')),
      async (round: number) => referenceCalled.push(await referenceCall(c, d, round, 'call')),
    ];
    for (let round = 0; round < ROUNDS; round++) {
      // Take turns at going first, so none always runs on a machine warmed by another.
      for (let i = 0; i < kinds.length; i++) await kinds[(round + i) % kinds.length](round);
    }
    // One more call of each, to see where its time goes (the timeline's hooks poll statistics,
    // so they are installed only now, not during the measured rounds).
    for (const user of [a, b]) {
      await installCallTimeline(user.context);
      await user.page.reload();
      await clearTimeline(user.page);
    }
    let t0 = 0;
    const timed = await duetCall(a, b, (epoch) => (t0 = epoch));
    const timeline = await timelineFromClick(t0, timed, a.page, b.page);
    console.log(`one Duet call (${Math.round(timed)} ms), from the callee's Accept click:`);
    for (const m of timeline) console.log(`  ${String(m.ms).padStart(6)} ms  ${m.who.padEnd(6)}  ${m.what}`);
    // The same hooks on the hand-written page, for a side-by-side account of where time goes.
    for (const user of [c, d]) {
      await installCallTimeline(user.context);
      await openReference(user);
      await clearTimeline(user.page);
    }
    let r0 = 0;
    const referenceTimed = await referenceCall(c, d, ROUNDS, 'click', (epoch) => (r0 = epoch));
    const referenceTimeline = await timelineFromClick(r0, referenceTimed, c.page, d.page);
    console.log(`one reference call (${Math.round(referenceTimed)} ms), from its Accept click:`);
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
      // The reference accepted by a call from the test, without a click's input events.
      reference_called: summary(referenceCalled),
      ratio_to_called: +(median(duet) / median(referenceCalled)).toFixed(2),
      timeline_of_one_duet_call: timeline,
      timeline_of_one_reference_call: referenceTimeline,
    };
    console.log(`call set-up (accept → first remote frame): ${JSON.stringify(report)}`);
    writeFileSync(test.info().outputPath('setup-time.json'), JSON.stringify(report, null, 2));
    expect(duet).toHaveLength(ROUNDS);
    expect(reference).toHaveLength(ROUNDS);
    expect(referenceCalled).toHaveLength(ROUNDS);
  } finally {
    await c.context.close();
    await d.context.close();
  }
});
