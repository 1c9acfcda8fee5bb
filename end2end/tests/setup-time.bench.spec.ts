// A figure, not an assertion: how long a call takes from the callee's click on Accept to the
// first decoded remote frame, median of 10 calls between two contexts. Written to the test's
// output (setup-time.json) and printed; docs/benchmarks.md quotes it.
import { writeFileSync } from 'node:fs';
import { test, expect } from './fixtures';
import { backToIdle, dial, expectState, hangUp } from './calls';

test('call set-up time, accept to first remote frame (10 calls)', async ({ users }) => {
  test.setTimeout(180_000);
  const [a, b] = await users(2);
  const samples: number[] = [];
  for (let i = 0; i < 10; i++) {
    await dial(a, b);
    await expectState(b.page, 'incoming');
    // Timed inside the callee's page: the click, then polling its own stats until a frame.
    const started = await b.page.evaluate(() => performance.now());
    await b.page.getByTestId('accept').click();
    const firstFrameAt = await b.page.evaluate(async () => {
      for (;;) {
        const pc = (window as any).__duetPc as RTCPeerConnection | undefined;
        if (pc) {
          let frames = 0;
          (await pc.getStats()).forEach((s: any) => {
            if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded ?? 0;
          });
          if (frames > 0) return performance.now();
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    });
    samples.push(firstFrameAt - started);
    await expectState(a.page, 'in-call');
    await hangUp(a.page);
    await expectState(b.page, 'ended', 'hangup');
    await backToIdle(a.page);
    await backToIdle(b.page);
  }
  const sorted = [...samples].sort((x, y) => x - y);
  const median = (sorted[4] + sorted[5]) / 2;
  const report = { samples_ms: samples.map(Math.round), median_ms: Math.round(median), min_ms: Math.round(sorted[0]), max_ms: Math.round(sorted[9]) };
  console.log(`call set-up (accept → first remote frame): ${JSON.stringify(report)}`);
  writeFileSync(test.info().outputPath('setup-time.json'), JSON.stringify(report, null, 2));
  expect(samples).toHaveLength(10);
});
