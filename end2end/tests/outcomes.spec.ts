import { test, expect } from './fixtures';
import { backToIdle, connect, dial, expectMediaFlowing, expectNoLiveCapture, expectState, inbound } from './calls';

test('decline: the caller sees "declined" and can call again', async ({ users }) => {
  const [a, b] = await users(2);
  await dial(a, b);
  await expectState(b.page, 'incoming');
  await b.page.getByTestId('decline').click();
  await expectState(a.page, 'ended', 'declined');
  await a.page.screenshot({ path: test.info().outputPath('declined.png') });
  await expectNoLiveCapture(a.page);
  await backToIdle(a.page);
  await backToIdle(b.page);
  await connect(a, b);
});

test('C calls A while A talks with B: C hears busy, A and B carry on', async ({ users }) => {
  const [a, b, c] = await users(3);
  await connect(a, b);
  await dial(c, a);
  await expectState(c.page, 'ended', 'busy');
  await expectState(a.page, 'in-call');
  const before = await inbound(a.page);
  await expect.poll(async () => (await inbound(a.page)).framesDecoded).toBeGreaterThan(before.framesDecoded);
  await expectMediaFlowing(b.page);
});

test('the caller can cancel before an answer', async ({ users }) => {
  const [a, b] = await users(2);
  await dial(a, b);
  await expectState(b.page, 'incoming');
  await a.page.getByTestId('cancel').click();
  await expect(b.page.getByTestId('call-view')).not.toHaveAttribute('data-state', 'incoming');
  await backToIdle(a.page);
  await backToIdle(b.page);
});

test('glare: A and B call each other at the same moment and end up in one call', async ({ users }) => {
  const [a, b] = await users(2);
  await expect(a.page.locator(`[data-testid="contact"][data-user="${b.name}"]`)).toBeVisible();
  await expect(b.page.locator(`[data-testid="contact"][data-user="${a.name}"]`)).toBeVisible();
  await Promise.all([
    a.page.locator(`[data-testid="contact"][data-user="${b.name}"]`).click(),
    b.page.locator(`[data-testid="contact"][data-user="${a.name}"]`).click(),
  ]);
  await expectState(a.page, 'in-call');
  await expectState(b.page, 'in-call');
  await expectMediaFlowing(a.page);
  await expectMediaFlowing(b.page);
});
