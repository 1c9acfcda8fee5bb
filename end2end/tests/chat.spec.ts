// Chat and file transfer over the call's own data channel: nothing of it passes the server.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import type { Page } from '@playwright/test';
import { test, expect, type User } from './fixtures';
import { connect, inbound } from './calls';

const MiB = 1024 * 1024;

const panel = (page: Page) => page.getByTestId('chat-panel');
const messages = (page: Page) => page.getByTestId('chat-message');
const transfer = (page: Page, name: string) =>
  page.locator(`[data-testid="transfer"][data-name="${name}"]`);

async function openChat(page: Page) {
  if (!(await panel(page).isVisible())) await page.getByTestId('chat-toggle').click();
  await expect(panel(page)).toBeVisible();
}

async function say(page: Page, text: string) {
  await openChat(page);
  const input = page.getByTestId('chat-input');
  await input.fill(text);
  await input.press('Enter');
  await expect(input).toHaveValue('');
}

/** A file of random bytes in the test's output folder, and its SHA-256. */
function randomFile(name: string, bytes: number): { path: string; sha256: string } {
  const path = test.info().outputPath(name);
  const hash = createHash('sha256');
  const data = Buffer.alloc(bytes);
  for (let at = 0; at < bytes; at += MiB) {
    const piece = randomBytes(Math.min(MiB, bytes - at));
    piece.copy(data, at);
  }
  hash.update(data);
  writeFileSync(path, data);
  return { path, sha256: hash.digest('hex') };
}

async function offer(sender: User, path: string) {
  await openChat(sender.page);
  await sender.page.getByTestId('file-input').setInputFiles(path);
}

/** Notes in the page whether a progress bar was ever shown for a moving transfer. */
async function watchProgress(page: Page) {
  await page.evaluate(() => {
    const w = window as any;
    w.__sawProgress = false;
    const look = () => {
      if (document.querySelector('[data-testid="transfer"][data-state="sending"] progress, [data-testid="transfer"][data-state="receiving"] progress'))
        w.__sawProgress = true;
    };
    w.__progressObserver?.disconnect();
    w.__progressObserver = new MutationObserver(look);
    w.__progressObserver.observe(document.body, { subtree: true, childList: true, attributes: true });
  });
}

const sawProgress = (page: Page) => page.evaluate(() => (window as any).__sawProgress as boolean);

async function download(page: Page, name: string): Promise<{ sha256: string; filename: string }> {
  const row = transfer(page, name);
  await expect(row).toHaveAttribute('data-state', 'done', { timeout: 60_000 });
  const waiting = page.waitForEvent('download');
  await row.getByTestId('download').click();
  const file = await waiting;
  const path = await file.path();
  return {
    sha256: createHash('sha256').update(readFileSync(path)).digest('hex'),
    filename: file.suggestedFilename(),
  };
}

/** Bytes the page's data channel received (the browser's own count). */
async function channelBytesReceived(page: Page): Promise<number> {
  return page.evaluate(async () => {
    const pc = (window as any).__duetPc as RTCPeerConnection | undefined;
    if (!pc) return -1;
    let bytes = 0;
    (await pc.getStats()).forEach((s: any) => {
      if (s.type === 'data-channel') bytes += s.bytesReceived ?? 0;
    });
    return bytes;
  });
}

test('chat both ways in English and Chinese: text stays text, links are safe, delivered and unread marks', async ({ users }) => {
  const [a] = await users(1, { locale: 'en-US' });
  const [b] = await users(1, { locale: 'zh-CN' });
  await connect(a, b);
  await expect(a.page.getByTestId('chat-toggle')).toContainText('Chat');
  await expect(b.page.getByTestId('chat-toggle')).toContainText('聊天');

  const url = 'https://example.com/a?b=1&c=2';
  const tricky = `look <b>bold</b> <img src=x onerror="window.__pwned=1"> ${url}`;
  await say(a.page, tricky);
  await expect(a.page.getByTestId('chat-send')).toHaveText('Send');

  // B has the panel closed: an unread count, then the message as typed, markup as text.
  await expect(b.page.getByTestId('chat-unread')).toContainText('1');
  await say(a.page, 'javascript:alert(1) is not a link');
  await expect(b.page.getByTestId('chat-unread')).toContainText('2');
  await openChat(b.page);
  await expect(b.page.getByTestId('chat-unread')).toHaveCount(0);
  await expect(b.page.getByTestId('chat-send')).toHaveText('发送');
  const first = messages(b.page).first();
  await expect(first.locator('.text')).toHaveText(tricky);
  await expect(first).toHaveAttribute('data-mine', 'false');
  await expect(first.locator('.author')).toHaveText(a.name);
  await expect(first.locator('time')).toHaveText(/^\d\d:\d\d$/);
  await expect(b.page.locator('.chat-log b, .chat-log img')).toHaveCount(0);
  expect(await b.page.evaluate(() => (window as any).__pwned)).toBeUndefined();
  const link = first.locator('a');
  await expect(link).toHaveCount(1);
  await expect(link).toHaveAttribute('href', url);
  await expect(link).toHaveText(url);
  await expect(link).toHaveAttribute('rel', 'noopener noreferrer');
  await expect(link).toHaveAttribute('target', '_blank');
  await expect(messages(b.page).nth(1).locator('a')).toHaveCount(0);

  // A sees both delivered.
  await expect(a.page.locator('[data-testid="chat-message"][data-mine="true"][data-delivered="true"]')).toHaveCount(2);
  await expect(a.page.getByTestId('delivered').first()).toBeVisible();

  // B answers in Chinese over two lines (Shift+Enter), A's panel is open: no unread count.
  const input = b.page.getByTestId('chat-input');
  await input.fill('你好');
  await input.press('Shift+Enter');
  await input.pressSequentially('第二行 http://例子.测试/路径');
  await input.press('Enter');
  const reply = messages(a.page).last();
  await expect(reply).toHaveAttribute('data-mine', 'false');
  await expect(reply.locator('.text')).toHaveText('你好\n第二行 http://例子.测试/路径');
  await expect(reply.locator('.author')).toHaveText(b.name);
  await expect(reply.locator('a')).toHaveText('http://例子.测试/路径');
  await expect(a.page.getByTestId('chat-unread')).toHaveCount(0);
  await expect(b.page.locator('[data-testid="chat-message"][data-mine="true"]')).toHaveAttribute('data-delivered', 'true');
  await b.page.screenshot({ path: test.info().outputPath('chat-zh.png') });

  // Closed again: the count comes back for new messages only.
  await a.page.getByTestId('chat-close').click();
  await say(b.page, 'again');
  await expect(a.page.getByTestId('chat-unread')).toContainText('1');

  // The conversation stays on the ended card, and is gone after it.
  await a.page.getByTestId('hangup').click();
  await expect(b.page.getByTestId('call-view')).toHaveAttribute('data-state', 'ended');
  await openChat(b.page);
  await expect(messages(b.page)).toHaveCount(4);
  await b.page.getByTestId('back').click();
  await expect(b.page.getByTestId('chat-toggle')).toHaveCount(0);
});

test('a 5 MiB file arrives intact with progress on both sides while video keeps decoding', async ({ users }) => {
  const [a, b] = await users(2);
  await connect(a, b);
  const file = randomFile('random.bin', 5 * MiB);
  await offer(a, file.path);
  await expect(transfer(a.page, 'random.bin')).toHaveAttribute('data-state', 'waiting');
  await expect(b.page.getByTestId('chat-unread')).toContainText('1');
  await openChat(b.page);
  const row = transfer(b.page, 'random.bin');
  await expect(row).toHaveAttribute('data-state', 'offered');
  await expect(row).toContainText('5.2 MB');
  await expect(row).toContainText('application/octet-stream');

  await watchProgress(a.page);
  await watchProgress(b.page);
  const before = await inbound(b.page);
  await row.getByTestId('file-accept').click();
  const got = await download(b.page, 'random.bin');
  expect(got.filename).toBe('random.bin');
  expect(got.sha256).toBe(file.sha256);
  await expect(transfer(a.page, 'random.bin')).toHaveAttribute('data-state', 'done');
  expect(await sawProgress(a.page)).toBe(true);
  expect(await sawProgress(b.page)).toBe(true);
  await expect.poll(async () => (await inbound(b.page)).framesDecoded).toBeGreaterThan(before.framesDecoded + 10);
  await expect(b.page.getByTestId('call-view')).toHaveAttribute('data-state', 'in-call');
});

test('the receiver cancels half-way: both see cancelled, no download, and the channel carries on', async ({ users }) => {
  test.setTimeout(180_000); // a 64 MiB file to make and offer on a shared, loaded box
  const [a, b] = await users(2);
  await connect(a, b);
  const big = randomFile('big.bin', 64 * MiB);
  await offer(a, big.path);
  await openChat(b.page);
  const row = transfer(b.page, 'big.bin');
  await row.getByTestId('file-accept').click();
  await expect.poll(async () => Number(await row.getAttribute('data-done'))).toBeGreaterThan(0);
  await row.getByTestId('file-cancel').click();
  await expect(row).toHaveAttribute('data-state', 'cancelled');
  await expect(transfer(a.page, 'big.bin')).toHaveAttribute('data-state', 'cancelled');
  await expect(b.page.getByTestId('download')).toHaveCount(0);

  // The next file and chat still go through.
  const small = randomFile('next.bin', 300 * 1024);
  await offer(a, small.path);
  await transfer(b.page, 'next.bin').getByTestId('file-accept').click();
  expect((await download(b.page, 'next.bin')).sha256).toBe(small.sha256);
  await say(b.page, 'still here');
  await expect(messages(a.page).last().locator('.text')).toHaveText('still here');
});

test('the sender cancels: the receiver sees it and keeps nothing', async ({ users }) => {
  test.setTimeout(180_000); // a 64 MiB file to make and offer on a shared, loaded box
  const [a, b] = await users(2);
  await connect(a, b);
  const big = randomFile('big2.bin', 64 * MiB);
  await offer(a, big.path);
  await openChat(b.page);
  await transfer(b.page, 'big2.bin').getByTestId('file-accept').click();
  const sending = transfer(a.page, 'big2.bin');
  await expect.poll(async () => Number(await sending.getAttribute('data-done'))).toBeGreaterThan(0);
  await sending.getByTestId('file-cancel').click();
  await expect(sending).toHaveAttribute('data-state', 'cancelled');
  await expect(transfer(b.page, 'big2.bin')).toHaveAttribute('data-state', 'cancelled');
  await expect(b.page.getByTestId('download')).toHaveCount(0);
});

test('decline: the sender sees declined and nothing is transferred', async ({ users }) => {
  const [a, b] = await users(2);
  await connect(a, b);
  const file = randomFile('unwanted.bin', 5 * MiB);
  const baseline = await channelBytesReceived(b.page);
  await offer(a, file.path);
  await openChat(b.page);
  await transfer(b.page, 'unwanted.bin').getByTestId('file-decline').click();
  await expect(transfer(a.page, 'unwanted.bin')).toHaveAttribute('data-state', 'declined');
  await expect(transfer(b.page, 'unwanted.bin')).toHaveAttribute('data-state', 'declined');
  await b.page.waitForTimeout(500);
  const received = (await channelBytesReceived(b.page)) - baseline;
  expect(received).toBeLessThan(4096);
  await expect(b.page.getByTestId('download')).toHaveCount(0);
});

test('a 50 MiB transfer keeps the receiver heap bounded; throughput beside a plain-JS data channel', async ({ users }) => {
  test.setTimeout(180_000);
  const [a, b] = await users(2);
  await connect(a, b);
  const size = 50 * MiB;
  const file = randomFile('fifty.bin', size);
  const cdp = await b.context.newCDPSession(b.page);
  await cdp.send('Performance.enable');
  const heap = async () => {
    const { metrics } = await cdp.send('Performance.getMetrics');
    return metrics.find((m) => m.name === 'JSHeapUsedSize')?.value ?? 0;
  };
  await cdp.send('HeapProfiler.collectGarbage');
  const heapBefore = await heap();

  await offer(a, file.path);
  await openChat(b.page);
  const row = transfer(b.page, 'fifty.bin');
  await expect(row).toHaveAttribute('data-state', 'offered');
  let peak = heapBefore;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, await heap());
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  const started = Date.now();
  await row.getByTestId('file-accept').click();
  await expect(row).toHaveAttribute('data-state', 'done', { timeout: 150_000 });
  const seconds = (Date.now() - started) / 1000;
  sampling = false;
  await sampler;
  const duetMBps = size / 1e6 / seconds;

  // The same amount through a bare RTCDataChannel pair in one page, same chunking and buffer marks.
  const plainMBps = await a.page.evaluate(async (bytes) => {
    const one = new RTCPeerConnection();
    const two = new RTCPeerConnection();
    one.onicecandidate = (e) => e.candidate && two.addIceCandidate(e.candidate);
    two.onicecandidate = (e) => e.candidate && one.addIceCandidate(e.candidate);
    const tx = one.createDataChannel('plain', { negotiated: true, id: 0 });
    const rx = two.createDataChannel('plain', { negotiated: true, id: 0 });
    tx.binaryType = rx.binaryType = 'arraybuffer';
    await one.setLocalDescription();
    await two.setRemoteDescription(one.localDescription!);
    await two.setLocalDescription();
    await one.setRemoteDescription(two.localDescription!);
    await new Promise<void>((r) => (tx.readyState === 'open' ? r() : (tx.onopen = () => r())));
    const chunk = new Uint8Array(16 * 1024 + 4);
    crypto.getRandomValues(chunk);
    let got = 0;
    const done = new Promise<void>((r) => {
      rx.onmessage = (e) => {
        got += (e.data as ArrayBuffer).byteLength - 4;
        if (got >= bytes) r();
      };
    });
    tx.bufferedAmountLowThreshold = 256 * 1024;
    const t0 = performance.now();
    for (let sent = 0; sent < bytes; sent += 16 * 1024) {
      if (tx.bufferedAmount > 1024 * 1024)
        await new Promise<void>((r) => (tx.onbufferedamountlow = () => r()));
      tx.send(chunk);
    }
    await done;
    const ms = performance.now() - t0;
    one.close();
    two.close();
    return bytes / 1e6 / (ms / 1000);
  }, size);

  const note = `Duet ${duetMBps.toFixed(1)} MB/s (${seconds.toFixed(2)} s for 50 MiB), plain JS data channel ${plainMBps.toFixed(1)} MB/s; receiver JS heap ${(heapBefore / MiB).toFixed(1)} MiB before, peak ${(peak / MiB).toFixed(1)} MiB`;
  console.log(note);
  test.info().annotations.push({ type: 'throughput', description: note });
  expect(peak).toBeLessThan(2 * size);
  expect(peak - heapBefore).toBeLessThan(size / 2);
  await expect(transfer(a.page, 'fifty.bin')).toHaveAttribute('data-state', 'done');
});
