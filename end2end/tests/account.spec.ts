import { test, expect, uniqueName, newUser, DuetServer } from './fixtures';

test('register, log out, log in; a wrong password shows an error', async ({ browser, server }) => {
  const context = await browser.newContext({ baseURL: server.baseURL });
  const page = await context.newPage();
  const name = uniqueName('reg');
  await page.goto('/');
  await page.getByTestId('username').fill(name);
  await page.getByTestId('password').fill('short');
  await page.getByTestId('register').click();
  // The client mirrors the server's rules before sending anything.
  await expect(page.getByTestId('auth-error')).toContainText(/8/);

  await page.getByTestId('password').fill('a good password');
  await page.getByTestId('register').click();
  await expect(page.getByTestId('me')).toHaveText(name);
  await page.screenshot({ path: test.info().outputPath('contacts.png') });

  await page.getByTestId('logout').click();
  await expect(page.getByTestId('login')).toBeVisible();
  await page.screenshot({ path: test.info().outputPath('login.png') });

  await page.getByTestId('username').fill(name);
  await page.getByTestId('password').fill('the wrong password');
  await page.getByTestId('login').click();
  await expect(page.getByTestId('auth-error')).not.toBeEmpty();
  await expect(page.getByTestId('me')).toHaveCount(0);

  await page.getByTestId('password').fill('a good password');
  await page.getByTestId('login').click();
  await expect(page.getByTestId('me')).toHaveText(name);

  // The session survives a reload.
  await page.reload();
  await expect(page.getByTestId('me')).toHaveText(name);
  await context.close();
});

test('a zh-CN browser gets the Chinese interface, and the switch changes it', async ({ browser, server }) => {
  const context = await browser.newContext({ baseURL: server.baseURL, locale: 'zh-CN' });
  const page = await context.newPage();
  await page.goto('/');
  await expect(page.locator('html')).toHaveAttribute('lang', 'zh-CN');
  await expect(page.getByTestId('login')).toHaveText(/登录/);
  await page.screenshot({ path: test.info().outputPath('login-zh.png') });
  await page.getByTestId('lang-switch').click();
  await expect(page.locator('html')).toHaveAttribute('lang', 'en');
  await expect(page.getByTestId('login')).toHaveText(/Log in/i);
  await context.close();
});

test('the server\'s refusals are shown in the interface\'s language', async ({ browser }) => {
  // Its own server, so the throttle it trips (two failures) touches no other test.
  const server = new DuetServer({ DUET_LOGIN_FAILURES: '2' });
  await server.start();
  try {
    const owner = await newUser(browser, server, 'owner', { open: false });
    const context = await browser.newContext({ baseURL: server.baseURL, locale: 'zh-CN' });
    const page = await context.newPage();
    await page.goto('/');
    await expect(page.locator('html')).toHaveAttribute('lang', 'zh-CN');
    const error = page.getByTestId('auth-error');
    // Clicks, then waits for the server's answer: the form clears its old message when it sends,
    // so what shows afterwards is this answer's.
    const submit = async (button: 'login' | 'register') => {
      const answered = page.waitForResponse((r) => r.url().endsWith(`/user/${button}`));
      await page.getByTestId(button).click();
      await answered;
    };

    await page.getByTestId('username').fill(owner.name);
    await page.getByTestId('password').fill('not the password');
    await submit('register');
    await expect(error).toHaveText('该用户名已被占用，请换一个，或直接登录。');

    await submit('login');
    await expect(error).toHaveText('用户名或密码错误。');
    // The message is kept as a reason, not as words: it follows a language switch.
    await page.getByTestId('lang-switch').click();
    await expect(error).toHaveText('Wrong username or password.');

    await submit('login');
    await expect(error).toHaveText('Wrong username or password.');
    // Two failures reached the limit: now even the right password waits, and the page says how long.
    await page.getByTestId('lang-switch').click();
    await page.getByTestId('password').fill(owner.password);
    await submit('login');
    await expect(error).toHaveText('失败次数过多，请 15 分钟后再试。');
    await expect(page.getByTestId('me')).toHaveCount(0);
    await owner.context.close();
    await context.close();
  } finally {
    await server.dispose();
  }
});

test('logging out in one tab signs the other tabs out at once, with no "reconnecting" detour', async ({ users }) => {
  const [a, b] = await users(2);
  const second = await a.context.newPage();
  await second.goto('/');
  // B listed means this tab's socket is open and greeted.
  await expect(second.locator(`[data-testid="contact"][data-user="${b.name}"]`)).toBeVisible();
  await second.evaluate(() => {
    const seen = { banner: false };
    (window as unknown as { duetSeen: typeof seen }).duetSeen = seen;
    new MutationObserver(() => {
      if (document.querySelector('[data-testid="offline-banner"]')) seen.banner = true;
    }).observe(document.body, { childList: true, subtree: true });
  });

  await a.page.getByTestId('logout').click();
  await expect(a.page.getByTestId('login')).toBeVisible();
  // The server closed the other tab's socket with 4001 "session ended": straight to the login
  // form, never "connection lost, reconnecting…" for a session that cannot come back.
  await expect(second.getByTestId('login')).toBeVisible();
  expect(await second.evaluate(() => (window as unknown as { duetSeen: { banner: boolean } }).duetSeen.banner)).toBe(false);
  // And B sees A gone.
  await expect(b.page.locator(`[data-testid="contact"][data-user="${a.name}"]`)).toHaveCount(0);
});
