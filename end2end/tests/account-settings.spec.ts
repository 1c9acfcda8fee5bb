// "Account" (issue #15): change the password, log out of all devices, delete the account, each
// seen from the user's other device and from another user.
import type { Browser, BrowserContext, Page } from '@playwright/test';
import { test, expect, befriend, newUser, DuetServer, type User } from './fixtures';

/** Each test on a server of its own: the wrong passwords typed here count against 127.0.0.1's
 * failed-login allowance, which the other tests share on the worker's server. */
async function onOwnServer(browser: Browser, run: (server: DuetServer, contexts: BrowserContext[]) => Promise<void>) {
  const server = new DuetServer();
  const contexts: BrowserContext[] = [];
  await server.start();
  try {
    await run(server, contexts);
  } finally {
    for (const context of contexts) await context.close();
    await server.dispose();
  }
}

/** A fresh user, logged in and listed as online in their page. */
async function user(browser: Browser, server: DuetServer, contexts: BrowserContext[], prefix: string): Promise<User> {
  const made = await newUser(browser, server, prefix);
  contexts.push(made.context);
  await expect(made.page.getByTestId('me')).toHaveText(made.name);
  return made;
}

/** `who` logged in again in a browser context of its own: another device. */
async function anotherDevice(browser: Browser, server: DuetServer, contexts: BrowserContext[], who: User): Promise<Page> {
  const context = await browser.newContext({
    baseURL: server.baseURL,
    locale: 'en-US',
    permissions: ['camera', 'microphone'],
  });
  contexts.push(context);
  const response = await context.request.post('/user/login', {
    data: { username: who.name, password: who.password },
  });
  expect(await response.json()).toEqual({ flag: true });
  const page = await context.newPage();
  await page.goto('/');
  await expect(page.getByTestId('me')).toHaveText(who.name);
  return page;
}

/** `name` in `page`'s list of who is online (listed: that page's socket is open and greeted). */
const listed = (page: Page, name: string) => page.locator(`[data-testid="contact"][data-user="${name}"]`);

/** Notes whether the "reconnecting" banner ever shows in `page` from now on. */
async function watchForBanner(page: Page): Promise<() => Promise<boolean>> {
  await page.evaluate(() => {
    const seen = { banner: false };
    (window as unknown as { duetSeen: typeof seen }).duetSeen = seen;
    new MutationObserver(() => {
      if (document.querySelector('[data-testid="offline-banner"]')) seen.banner = true;
    }).observe(document.body, { childList: true, subtree: true });
  });
  return () => page.evaluate(() => (window as unknown as { duetSeen: { banner: boolean } }).duetSeen.banner);
}

const NEW_PASSWORD = 'a brand new password';

test('changing the password signs the other device out and keeps this one', async ({ browser }) => {
  await onOwnServer(browser, async (server, contexts) => {
    const a = await user(browser, server, contexts, 'pw');
    const b = await user(browser, server, contexts, 'peer');
    await befriend(a, b);
    const other = await anotherDevice(browser, server, contexts, a);
    await expect(listed(a.page, b.name)).toBeVisible();
    await expect(listed(other, b.name)).toBeVisible();
    const bannerShown = await watchForBanner(a.page);

    await a.page.getByTestId('account-open').click();
    await expect(a.page.getByTestId('account-panel')).toBeVisible();
    // The client checks the new password's rules first.
    await a.page.getByTestId('account-current').fill(a.password);
    await a.page.getByTestId('account-new').fill('short');
    await a.page.getByTestId('account-change-password').click();
    await expect(a.page.getByTestId('account-error')).toContainText('8');
    // The server checks the current one.
    await a.page.getByTestId('account-current').fill('not my password');
    await a.page.getByTestId('account-new').fill(NEW_PASSWORD);
    await a.page.getByTestId('account-change-password').click();
    await expect(a.page.getByTestId('account-error')).toHaveText('That password is not right.');
    await expect(other.getByTestId('me')).toHaveText(a.name);

    await a.page.getByTestId('account-current').fill(a.password);
    await a.page.getByTestId('account-change-password').click();
    await expect(a.page.getByTestId('account-done')).toHaveText(
      'Password changed. Your other devices were signed out.',
    );
    // The other device is shown the login form.
    await expect(other.getByTestId('login')).toBeVisible();
    // This one stays signed in, its socket open: past the server's watcher of password changes
    // (every 2 s) it still lists B, B still lists it, and it never showed "reconnecting".
    await a.page.waitForTimeout(3_000);
    await expect(a.page.getByTestId('me')).toHaveText(a.name);
    await expect(a.page.getByTestId('login')).toHaveCount(0);
    await expect(listed(a.page, b.name)).toBeVisible();
    await expect(listed(b.page, a.name)).toBeVisible();
    expect(await bannerShown()).toBe(false);
    await a.page.reload();
    await expect(a.page.getByTestId('me')).toHaveText(a.name);

    // On the other device: the old password fails, the new one works.
    await other.getByTestId('username').fill(a.name);
    await other.getByTestId('password').fill(a.password);
    await other.getByTestId('login').click();
    await expect(other.getByTestId('auth-error')).toHaveText('Wrong username or password.');
    await other.getByTestId('password').fill(NEW_PASSWORD);
    await other.getByTestId('login').click();
    await expect(other.getByTestId('me')).toHaveText(a.name);
  });
});

test('logging out of all devices signs every device out', async ({ browser }) => {
  await onOwnServer(browser, async (server, contexts) => {
    const a = await user(browser, server, contexts, 'all');
    const other = await anotherDevice(browser, server, contexts, a);
    await a.page.getByTestId('account-open').click();
    await a.page.getByTestId('account-logout-all').click();
    await expect(a.page.getByTestId('login')).toBeVisible();
    await expect(other.getByTestId('login')).toBeVisible();
    // The password still works.
    await other.getByTestId('username').fill(a.name);
    await other.getByTestId('password').fill(a.password);
    await other.getByTestId('login').click();
    await expect(other.getByTestId('me')).toHaveText(a.name);
  });
});

test('deleting the account: another user sees them go offline, and the name cannot log in', async ({ browser }) => {
  await onOwnServer(browser, async (server, contexts) => {
    const a = await user(browser, server, contexts, 'gone');
    const b = await user(browser, server, contexts, 'stays');
    await befriend(a, b);
    const other = await anotherDevice(browser, server, contexts, a);
    await expect(listed(b.page, a.name)).toBeVisible();

    await a.page.getByTestId('account-open').click();
    await a.page.getByTestId('account-delete-password').fill('not my password');
    await a.page.getByTestId('account-delete').click();
    await expect(a.page.getByTestId('account-error')).toHaveText('That password is not right.');
    await expect(a.page.getByTestId('me')).toHaveText(a.name);

    await a.page.getByTestId('account-delete-password').fill(a.password);
    await a.page.getByTestId('account-delete').click();
    await expect(a.page.getByTestId('login')).toBeVisible();
    await expect(other.getByTestId('login')).toBeVisible();
    await expect(listed(b.page, a.name)).toHaveCount(0);

    await a.page.getByTestId('username').fill(a.name);
    await a.page.getByTestId('password').fill(a.password);
    await a.page.getByTestId('login').click();
    await expect(a.page.getByTestId('auth-error')).toHaveText('Wrong username or password.');
    await expect(a.page.getByTestId('me')).toHaveCount(0);
  });
});

test('the account panel speaks Chinese in a zh-CN browser', async ({ browser }) => {
  await onOwnServer(browser, async (server, contexts) => {
    const made = await newUser(browser, server, 'zh', { locale: 'zh-CN' });
    contexts.push(made.context);
    await made.page.getByTestId('account-open').click();
    await expect(made.page.getByTestId('account-open')).toHaveAttribute('title', '账户');
    await expect(made.page.getByTestId('account-logout-all')).toHaveText('退出所有设备');
    await made.page.getByTestId('account-delete-password').fill('not my password');
    await made.page.getByTestId('account-delete').click();
    await expect(made.page.getByTestId('account-error')).toHaveText('密码不正确。');
  });
});
