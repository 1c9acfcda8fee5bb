// Call history through the UI: a missed call is counted until seen (also after a reload), each
// side sees the call as it saw it, and "call back" rings the other person.
import { test, expect } from './fixtures';
import { connect, dial, expectState, hangUp } from './calls';

test('a missed call is counted until seen, and calling back rings', async ({ users }) => {
  const [a, b] = await users(2);
  const recent = (page: typeof a.page) => page.getByTestId('recent-call');

  // An answered call, then one b misses (a gives up while it rings).
  await connect(a, b);
  await hangUp(a.page);
  await dial(a, b);
  await expectState(b.page, 'incoming');
  await a.page.getByTestId('cancel').click();

  const badge = b.page.getByTestId('missed-badge');
  await expect(badge).toHaveText('1');
  // Kept by the server: still counted after a reload, until the list is opened.
  await b.page.reload();
  await expect(badge).toHaveText('1');
  await b.page.getByTestId('recent').locator('summary').click();
  await expect(recent(b.page)).toHaveCount(2);
  await expect(recent(b.page).first()).toHaveAttribute('data-outcome', 'missed');
  await expect(recent(b.page).first()).toHaveAttribute('data-user', a.name);
  await expect(recent(b.page).nth(1)).toHaveAttribute('data-outcome', 'answered');
  // Opened: seen, on the server too.
  await expect(badge).toHaveCount(0);
  await b.page.reload();
  await expect(b.page.getByTestId('recent')).toBeVisible();
  await b.page.getByTestId('recent').locator('summary').click();
  await expect(recent(b.page)).toHaveCount(2);
  await expect(badge).toHaveCount(0);

  // The caller's side of the same calls.
  await a.page.getByTestId('recent').locator('summary').click();
  await expect(recent(a.page).first()).toHaveAttribute('data-outcome', 'cancelled');

  // Call back from the history.
  await recent(b.page).first().getByTestId('call-back').click();
  await expectState(a.page, 'incoming');
});
