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
