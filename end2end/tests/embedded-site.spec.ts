// One file to deploy: a `duet` started where no site root exists on disk serves the site built
// into it, and the page hydrates.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect, test } from '@playwright/test';

const BINARY = process.env.DUET_BIN ?? path.resolve(__dirname, '..', '..', 'target', 'release', 'duet');

test('duet started from another folder, with no site on disk, serves its embedded site', async ({ browser, request }) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'duet-embedded-'));
  // The working directory is an empty folder: the default site root (target/site) is absent.
  const child = spawn(BINARY, [], {
    cwd: dir,
    env: { ...process.env, DUET_ADDR: '127.0.0.1:0', DUET_DATA_DIR: path.join(dir, 'data'), DUET_SITE_ROOT: path.join(dir, 'no-site') },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  try {
    const baseURL = await new Promise<string>((resolve, reject) => {
      let log = '';
      const timer = setTimeout(() => reject(new Error(`duet did not start:\n${log}`)), 30_000);
      child.stderr!.on('data', (chunk: Buffer) => {
        log += chunk.toString();
        const match = /Duet is serving addr=(\S+)/.exec(log.replace(/\x1b\[[0-9;]*m/g, ''));
        if (match) {
          clearTimeout(timer);
          // Rejected, not thrown: an exception in this callback would leave the promise pending
          // until the test times out, and the server running after it.
          if (log.includes('serving the site embedded in the binary')) resolve(`http://${match[1]}`);
          else reject(new Error(`duet serves no embedded site:\n${log}`));
        }
      });
      child.on('exit', (code) => reject(new Error(`duet exited with ${code}:\n${log}`)));
    });
    child.stderr!.resume();

    const html = await (await request.get(baseURL + '/')).text();
    const wasm = /href="(\/pkg\/duet\.[0-9a-f]{16}\.wasm)"/.exec(html);
    expect(wasm, html).not.toBeNull();
    const response = await request.get(baseURL + wasm![1], { headers: { 'accept-encoding': 'br' } });
    expect(response.status()).toBe(200);
    expect(response.headers()['content-encoding']).toBe('br');
    expect(response.headers()['content-type']).toBe('application/wasm');
    expect(response.headers()['cache-control']).toContain('immutable');
    expect((await request.get(baseURL + '/favicon.svg')).status()).toBe(200);

    const context = await browser.newContext({ baseURL });
    const page = await context.newPage();
    await page.goto('/');
    await expect(page.locator('html[data-hydrated]')).toHaveCount(1);
    await page.getByTestId('login').click();
    await expect(page.getByTestId('auth-error')).not.toBeEmpty();
    await context.close();
  } finally {
    if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
