// The foundation: the server-rendered page hydrates and reacts to input, in two independent
// browser contexts at once.
import { test, expect } from './fixtures';

test('the page hydrates and reacts in two contexts at once', async ({ browser, server }) => {
  const contexts = await Promise.all([0, 1].map(() => browser.newContext({ baseURL: server.baseURL })));
  try {
    const pages = await Promise.all(contexts.map((c) => c.newPage()));
    await Promise.all(pages.map((p) => p.goto('/')));
    // Before hydration a click would submit the form natively; after it, the client checks
    // the empty username itself and explains.
    await Promise.all(
      pages.map(async (page) => {
        await expect(page.getByTestId('login')).toBeVisible();
        await expect(page.locator('html[data-hydrated]')).toHaveCount(1);
        await page.getByTestId('login').click();
        await expect(page.getByTestId('auth-error')).not.toBeEmpty();
      }),
    );
  } finally {
    await Promise.all(contexts.map((c) => c.close()));
  }
});

test('static assets are compressed and cached by name', async ({ request, server }) => {
  const html = await (await request.get(server.baseURL + '/')).text();
  const wasm = /href="(\/pkg\/duet\.[0-9a-f]{16}\.wasm)"/.exec(html);
  expect(wasm, html).not.toBeNull();
  const response = await request.get(server.baseURL + wasm![1], {
    headers: { 'accept-encoding': 'br' },
  });
  expect(response.headers()['content-encoding']).toBe('br');
  expect(response.headers()['cache-control']).toContain('immutable');
  expect((await request.get(server.baseURL + '/healthz')).status()).toBe(200);
});

test('the page runs under a strict content security policy, and nothing it does breaks it', async ({
  browser,
  server,
}) => {
  const context = await browser.newContext({ baseURL: server.baseURL });
  try {
    const page = await context.newPage();
    const violations: string[] = [];
    page.on('console', (message) => {
      if (/Content.Security.Policy|Refused to/i.test(message.text())) violations.push(message.text());
    });
    const response = await page.goto('/');
    const headers = response!.headers();
    const policy = headers['content-security-policy'];
    expect(policy).toContain("'wasm-unsafe-eval'");
    expect(policy).toContain("frame-ancestors 'none'");
    expect(policy).not.toContain("'unsafe-eval'");
    expect(policy).not.toMatch(/script-src[^;]*'unsafe-inline'/);
    expect(headers['x-content-type-options']).toBe('nosniff');
    expect(headers['referrer-policy']).toBe('no-referrer');
    expect(headers['permissions-policy']).toContain('camera=(self)');
    // The page hydrated (its wasm and bootstrap were allowed)...
    await expect(page.locator('html[data-hydrated]')).toHaveCount(1);
    // ...while a script injected into it is refused.
    const injected = await page.evaluate(async () => {
      const ran = new Promise<boolean>((resolve) => {
        (window as unknown as { __injected: () => void }).__injected = () => resolve(true);
        document.addEventListener('securitypolicyviolation', () => resolve(false), { once: true });
      });
      const script = document.createElement('script');
      script.textContent = 'window.__injected()';
      document.body.append(script);
      return ran;
    });
    expect(injected).toBe(false);
    violations.length = 0;
    // A user's whole way through the page: sign up, see the contact list.
    await page.getByTestId('username').fill(`csp${Date.now() % 100000}`);
    await page.getByTestId('password').fill('correct horse');
    await page.getByTestId('register').click();
    await expect(page.getByTestId('logout')).toBeVisible();
    expect(violations).toEqual([]);
  } finally {
    await context.close();
  }
});
