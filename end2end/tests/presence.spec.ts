import { test, expect, uniqueName } from './fixtures';

// The server lists a crowd in several `presence` frames (about 512 bytes of names each, so no
// frame inflates every connection's write buffer); the page must show their sum, not the last.
test('a long list of people online arrives whole, and follows them', async ({ browser, server, users }) => {
  const names = Array.from({ length: 80 }, (_, i) => uniqueName(`crowd${i}`));
  // The crowd's sockets, all opened from one page: each after logging in as its user (a socket
  // keeps the user it was opened as).
  const crowd = await browser.newContext({ baseURL: server.baseURL });
  const crowdPage = await crowd.newPage();
  await crowdPage.goto('/');
  await crowdPage.evaluate(async (names) => {
    const sockets: WebSocket[] = [];
    (window as unknown as { crowd: WebSocket[] }).crowd = sockets;
    for (const username of names) {
      const answer = await fetch('/user/register', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username, password: 'a crowd password' }),
      });
      if (!(await answer.json()).flag) throw new Error(`cannot register ${username}`);
      const socket = new WebSocket(`${location.origin.replace(/^http/, 'ws')}/video`);
      await new Promise((resolve, reject) => {
        socket.onmessage = (event) => {
          if (JSON.parse(event.data).type === 'hello') resolve(null);
        };
        socket.onerror = reject;
      });
      sockets.push(socket);
    }
  }, names);
  expect(names.join('').length).toBeGreaterThan(2 * 512);

  const [viewer] = await users(1);
  const listed = (name: string) => viewer.page.locator(`[data-testid="contact"][data-user="${name}"]`);
  for (const name of names) await expect(listed(name)).toBeVisible();

  // Updates after the list still apply.
  await crowdPage.evaluate(() => (window as unknown as { crowd: WebSocket[] }).crowd[0].close());
  await expect(listed(names[0])).toHaveCount(0);
  await expect(listed(names[1])).toBeVisible();
  await crowd.close();
});
