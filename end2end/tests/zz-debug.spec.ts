import { test } from './fixtures';
import { connect } from './calls';
test('debug lost', async ({ users }) => {
  test.setTimeout(120_000);
  const [a, b] = await users(2);
  await connect(a, b);
  await a.page.evaluate(() => {
    const pc = (window as any).__duetPc as RTCPeerConnection;
    const t0 = performance.now();
    const log = () => console.log(`${Math.round(performance.now() - t0)} pc=${pc.connectionState} ice=${pc.iceConnectionState} sig=${pc.signalingState} phase=${document.querySelector('.in-call')?.getAttribute('data-phase')}`);
    pc.addEventListener('connectionstatechange', log);
    pc.addEventListener('iceconnectionstatechange', log);
    pc.addEventListener('signalingstatechange', log);
    setInterval(log, 5000);
  });
  a.page.on('console', (m) => console.log('A', m.text()));
  await b.context.setOffline(true);
  await b.page.evaluate(() => (window as any).__duetPc?.close());
  await a.page.waitForSelector('[data-state="ended"]', { timeout: 100_000 });
});
