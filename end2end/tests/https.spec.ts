// HTTPS served by Duet itself with a self-signed certificate (--tls-self-signed): a call works,
// the session cookie is Secure and HSTS is sent.
import { expect, test } from '@playwright/test';
import { DuetServer, befriend, newUser, type User } from './fixtures';
import { connect } from './calls';

test('a call over HTTPS with a self-signed certificate', async ({ browser }) => {
  const server = new DuetServer({ DUET_TLS_SELF_SIGNED: 'true', DUET_TLS_NAMES: 'localhost,127.0.0.1' });
  const users: User[] = [];
  try {
    await server.start();
    expect(server.baseURL).toMatch(/^https:\/\//);
    const a = await newUser(browser, server, 'a');
    const b = await newUser(browser, server, 'b');
    await befriend(a, b);
    users.push(a, b);

    const response = await a.page.request.get('/healthz');
    expect(response.headers()['strict-transport-security']).toBe('max-age=31536000');
    const cookies = await a.context.cookies();
    const session = cookies.find((c) => c.name === 'duet_session');
    expect(session?.secure).toBe(true);
    expect(session?.httpOnly).toBe(true);

    await connect(a, b);
    expect(a.page.url()).toMatch(/^https:\/\//);
  } finally {
    for (const user of users) await user.context.close();
    await server.dispose();
  }
});
