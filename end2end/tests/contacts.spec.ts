// Contacts through the UI: add by name, accept, see each other and call; strangers see nothing;
// "only my contacts" and blocks refuse calls exactly as if the person were offline.
import { test, expect, newUser, type User } from './fixtures';
import { connect, expectOnline, hangUp } from './calls';

/** Sends an `invite` to `name` from a raw socket on `user`'s page (as the seed's page calls by
 * typed name) and returns what the server made of it: `delivered`, or the refusal's code. */
async function rawInvite(user: User, name: string): Promise<string> {
  return user.page.evaluate(async (name) => {
    const socket = new WebSocket(`${location.origin.replace(/^http/, 'ws')}/video`);
    try {
      return await new Promise<string>((resolve, reject) => {
        const callId = `probe-${Math.random()}`;
        socket.onerror = reject;
        socket.onmessage = (event) => {
          const frame = JSON.parse(event.data);
          if (frame.type === 'hello') {
            socket.send(JSON.stringify({ type: 'invite', name, call_id: callId }));
            // Stops the ringing a delivered invite started.
            socket.send(JSON.stringify({ type: 'cancel', name, call_id: callId }));
            // The server answers frames in order, and always refuses this one: if its refusal
            // comes first, the invite was delivered.
            socket.send(JSON.stringify({ type: 'invite', name: frame.username, call_id: 'marker' }));
          } else if (frame.type === 'error') {
            resolve(frame.call_id === 'marker' ? 'delivered' : frame.code);
          }
        };
      });
    } finally {
      socket.close();
    }
  }, name);
}

const contactRow = (viewer: User, who: User) =>
  viewer.page.locator(`[data-testid="contact"][data-user="${who.name}"]`);

test('add a contact by name, accept, see each other online and call', async ({ browser, server }) => {
  const a = await newUser(browser, server, 'a');
  const b = await newUser(browser, server, 'b', { locale: 'zh-CN' });
  const c = await newUser(browser, server, 'c');
  try {
    await expect(a.page.getByTestId('add-contact-name')).toBeVisible();
    // Strangers are not listed.
    await expect(contactRow(a, b)).toHaveCount(0);

    await a.page.getByTestId('add-contact-name').fill(b.name.toUpperCase());
    await a.page.getByTestId('add-contact').click();
    await expect(a.page.getByTestId('contact-notice')).toContainText(b.name.toUpperCase());
    const request = b.page.locator(`[data-testid="contact-request"][data-user="${a.name}"]`);
    await expect(request).toBeVisible();
    await expect(request.getByTestId('accept-contact')).toHaveText('接受');
    await request.getByTestId('accept-contact').click();

    await expectOnline(a, b);
    await expectOnline(b, a);
    await expect(request).toHaveCount(0);
    // The third user, no one's contact, sees neither.
    await expect(c.page.locator('[data-testid="contact"]')).toHaveCount(0);
    await connect(a, b);
  } finally {
    for (const user of [a, b, c]) await user.context.close();
  }
});

test('only my contacts may call me; a block hides me and refuses like offline', async ({ browser, server }) => {
  const a = await newUser(browser, server, 'a');
  const b = await newUser(browser, server, 'b');
  const c = await newUser(browser, server, 'c');
  try {
    await a.page.getByTestId('add-contact-name').fill(b.name);
    await a.page.getByTestId('add-contact').click();
    await b.page.locator(`[data-testid="contact-request"][data-user="${a.name}"]`).getByTestId('accept-contact').click();
    await expectOnline(a, b);

    // By default anyone who knows the name may call (the seed's pages call by typed name).
    expect(await rawInvite(c, b.name)).toBe('delivered');
    await b.page.getByTestId('manage-contacts').locator('summary').click();
    await b.page.getByTestId('calls-from').selectOption('contacts');
    await expect.poll(() => rawInvite(c, b.name)).toBe('peer_offline');
    // Exactly what a name with nobody behind it answers.
    expect(await rawInvite(c, 'nobody_by_this_name')).toBe('peer_offline');
    expect(await rawInvite(a, b.name)).toBe('delivered');
    // The setting is kept: shown again after a reload.
    await b.page.reload();
    await b.page.getByTestId('manage-contacts').locator('summary').click();
    await expect(b.page.getByTestId('calls-from')).toHaveValue('contacts');

    // Blocking a: each disappears from the other's list, and a's calls are refused.
    await b.page.locator(`[data-testid="managed-contact"][data-user="${a.name}"]`).getByTestId('block-contact').click();
    await expect(contactRow(a, b)).toHaveCount(0);
    await expect(contactRow(b, a)).toHaveCount(0);
    await expect(b.page.locator(`[data-testid="blocked-contact"][data-user="${a.name}"]`)).toBeVisible();
    expect(await rawInvite(a, b.name)).toBe('peer_offline');
    // a's new request is answered as sent, and b never sees it.
    await a.page.getByTestId('add-contact-name').fill(b.name);
    await a.page.getByTestId('add-contact').click();
    await expect(a.page.getByTestId('contact-notice')).toContainText(b.name);
    await b.page.reload();
    await expect(b.page.getByTestId('add-contact-name')).toBeVisible();
    await expect(b.page.getByTestId('contact-request')).toHaveCount(0);
  } finally {
    for (const user of [a, b, c]) await user.context.close();
  }
});

test('contacts see who is in a call: live, after a reload, and no longer once it ends', async ({ users }) => {
  const [a, b, c] = await users(3);
  const entry = (viewer: User, who: User) =>
    viewer.page.locator(`[data-testid="contact"][data-user="${who.name}"]`);
  const inACall = (viewer: User, who: User) => entry(viewer, who).getByTestId('in-a-call');
  const voiceCall = (viewer: User, who: User) =>
    viewer.page.locator(`[data-testid="voice-call"][data-user="${who.name}"]`);

  await expectOnline(c, a);
  await expectOnline(c, b);
  await expect(inACall(c, a)).toHaveCount(0);
  await connect(a, b);
  // C sees both in a call, in words and in the button's accessible name.
  for (const who of [a, b]) {
    await expect(inACall(c, who)).toHaveText('in a call');
    await expect(entry(c, who)).toHaveAccessibleName(`Video call ${who.name} (in a call)`);
    await expect(voiceCall(c, who)).toHaveAccessibleName(`Voice call ${who.name} (in a call)`);
  }
  await c.page.screenshot({ path: test.info().outputPath('in-a-call.png') });
  // A page opened now learns it from its first presence list.
  await c.page.reload();
  for (const who of [a, b]) await expect(inACall(c, who)).toBeVisible();

  await hangUp(a.page);
  for (const who of [a, b]) {
    await expect(inACall(c, who)).toHaveCount(0);
    await expect(entry(c, who)).toHaveAccessibleName(`Video call ${who.name}`);
    await expect(voiceCall(c, who)).toHaveAccessibleName(`Voice call ${who.name}`);
  }
});
