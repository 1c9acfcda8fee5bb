import { test, expect, uniqueName } from './fixtures';

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
