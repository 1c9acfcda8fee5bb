import { test, expect, contactAction, uniqueName } from './fixtures';

// The server lists a crowd in several `presence` frames (about 200 bytes of names each, so no
// frame inflates every connection's write buffer); the page must show their sum, not the last.
test('a long list of contacts online arrives whole, and follows them', async ({ browser, server, users }) => {
  const [viewer] = await users(1);
  const names = Array.from({ length: 80 }, (_, i) => uniqueName(`crowd${i}`));
  // The crowd's sockets, all opened from one page: each after logging in as its user (a socket
  // keeps the user it was opened as), and asking the viewer to be a contact.
  const crowd = await browser.newContext({ baseURL: server.baseURL });
  const crowdPage = await crowd.newPage();
  // Not the app: it would ask who is logged in as it starts, and if the answer came after a
  // crowd member's registration it would log in as them and open a socket of its own (that user
  // would then stay online after their test socket closed). Any page of the origin carries the
  // cookies.
  await crowdPage.goto('/livez');
  await crowdPage.evaluate(async ({ names, viewer }) => {
    const post = async (path: string, body: object) => {
      const answer = await fetch(path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (!(await answer.json()).flag) throw new Error(`${path} refused`);
    };
    const sockets: WebSocket[] = [];
    (window as unknown as { crowd: WebSocket[] }).crowd = sockets;
    for (const username of names) {
      await post('/user/register', { username, password: 'a crowd password' });
      await post('/contacts/request', { username: viewer });
      const socket = new WebSocket(`${location.origin.replace(/^http/, 'ws')}/video`);
      await new Promise((resolve, reject) => {
        socket.onmessage = (event) => {
          if (JSON.parse(event.data).type === 'hello') resolve(null);
        };
        socket.onerror = reject;
      });
      sockets.push(socket);
    }
  }, { names, viewer: viewer.name });
  expect(names.join('').length).toBeGreaterThan(2 * 512);

  // The requests show live; accepted, and the page loaded afresh, the list comes in pages.
  await expect(viewer.page.getByTestId('contact-request')).toHaveCount(names.length);
  for (const name of names) await contactAction(viewer, 'accept', name);
  await viewer.page.reload();
  const listed = (name: string) => viewer.page.locator(`[data-testid="contact"][data-user="${name}"]`);
  for (const name of names) await expect(listed(name)).toBeVisible();

  // Updates after the list still apply: one goes offline and is listed as such.
  await crowdPage.evaluate(() => (window as unknown as { crowd: WebSocket[] }).crowd[0].close());
  await expect(listed(names[0])).toHaveCount(0);
  await expect(viewer.page.locator(`[data-testid="offline-contact"][data-user="${names[0]}"]`)).toBeVisible();
  await expect(listed(names[1])).toBeVisible();
  await crowd.close();
});
