// Trunk's CSR build, through Trunk's proxy: register, see each other, call, and media flows.
import { test, expect } from '@playwright/test';
import { randomBytes } from 'node:crypto';
import { connect, expectState, hangUp } from '../tests/calls';
import type { User } from '../tests/fixtures';

const TRUNK = 'http://127.0.0.1:8081';

test('the CSR client served by trunk carries a call through the proxy', async ({ browser }) => {
  const users: User[] = [];
  for (const prefix of ['csr_a', 'csr_b']) {
    const context = await browser.newContext({ baseURL: TRUNK, permissions: ['camera', 'microphone'] });
    const name = `${prefix}_${randomBytes(4).toString('hex')}`;
    const password = `pw-${randomBytes(6).toString('hex')}`;
    // Through Trunk's /user proxy to the server.
    const answer = await context.request.post('/user/register', { data: { username: name, password } });
    expect(await answer.json()).toEqual({ flag: true });
    const page = await context.newPage();
    await page.goto('/');
    // Rendered in the browser from scratch (no server HTML), then signed in over the proxy.
    await expect(page.getByTestId('me')).toHaveText(name);
    users.push({ name, password, context, page });
  }
  const [alice, bob] = users;
  // The signaling socket goes through Trunk's WebSocket proxy.
  await connect(alice, bob);
  await hangUp(bob.page);
  await expectState(alice.page, 'ended', 'hangup');
  for (const user of users) await user.context.close();
});
