// The first screens a newcomer sees, at phone, tablet and desktop widths, in English and Chinese:
// nothing overlaps, nothing scrolls sideways. Screenshots land in the test output for a human eye.
import { test, expect, newUser } from './fixtures';
import type { Locator, Page } from '@playwright/test';

const viewports = [
  { name: 'phone', width: 375, height: 740 },
  { name: 'tablet', width: 768, height: 1024 },
  { name: 'laptop', width: 1100, height: 700 },
  { name: 'desktop', width: 1440, height: 900 },
];

async function box(locator: Locator) {
  const b = await locator.boundingBox();
  expect(b, `${locator} has no box`).not.toBeNull();
  return b!;
}

/** What a box covers when its own drawing (pseudo-elements included) overflows it. */
async function paintedBox(locator: Locator) {
  return locator.evaluate((el) => {
    const rects = [el.getBoundingClientRect()];
    for (const pseudo of ['::before', '::after']) {
      const style = getComputedStyle(el, pseudo);
      if (style.content === 'none') continue;
      const r = el.getBoundingClientRect();
      const top = r.top + (parseFloat(style.top) || 0);
      rects.push(new DOMRect(r.left + (parseFloat(style.left) || 0), top, parseFloat(style.width), parseFloat(style.height)));
    }
    return {
      x: Math.min(...rects.map((r) => r.left)),
      y: Math.min(...rects.map((r) => r.top)),
      bottom: Math.max(...rects.map((r) => r.bottom)),
    };
  });
}

async function expectNoSidewaysScroll(page: Page) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow, 'the page scrolls sideways').toBeLessThanOrEqual(0);
}

for (const locale of ['en-US', 'zh-CN']) {
  for (const viewport of viewports) {
    test(`login and contacts at ${viewport.name} width (${locale})`, async ({ browser, server }) => {
      const user = await newUser(browser, server, 'lay', { locale, open: false });
      const context = await browser.newContext({ baseURL: server.baseURL, locale, viewport });
      try {
        const page = await context.newPage();
        await page.goto('/');
        await expect(page.locator('html[data-hydrated]')).toHaveCount(1);
        const mark = page.locator('.auth-head .brand-mark');
        const heading = page.locator('.auth-head h1');
        const logo = await paintedBox(mark);
        const title = await box(heading);
        expect(logo.bottom, 'the logo overlaps the "Duet" heading').toBeLessThanOrEqual(title.y);
        expect(logo.y, 'the logo sticks out of the card').toBeGreaterThanOrEqual((await box(page.locator('.auth'))).y);
        await expectNoSidewaysScroll(page);
        await page.screenshot({ path: test.info().outputPath(`login-${viewport.name}-${locale}.png`), fullPage: true });

        await page.getByTestId('username').fill(user.name);
        await page.getByTestId('password').fill(user.password);
        await page.getByTestId('login').click();
        await expect(page.getByTestId('me')).toHaveText(user.name);
        await expectNoSidewaysScroll(page);
        await page.screenshot({ path: test.info().outputPath(`contacts-${viewport.name}-${locale}.png`), fullPage: true });
      } finally {
        await context.close();
        await user.context.close();
      }
    });
  }
}
