// The client alone, as Trunk serves it in the daily loop (CSR, `trunk serve` at :8081 proxying
// /user and /video to a Duet server at :8080): a developer's check that the CSR build and the
// proxy really carry a call. Not part of `scripts/test` (Trunk takes ~10 minutes to install);
// run it with `npx playwright test -c trunk.config.ts` after `scripts/install-tools trunk` and
// `scripts/build-site`. Ports 8080 and 8081 must be free.
import { defineConfig } from '@playwright/test';
import base from './playwright.config';

export default defineConfig({
  ...base,
  testDir: './trunk',
  outputDir: './test-results/trunk',
  reporter: 'list',
  webServer: [
    {
      command: '../target/release/duet',
      url: 'http://127.0.0.1:8080/healthz',
      env: {
        DUET_ADDR: '127.0.0.1:8080',
        DUET_DATA_DIR: '../target/trunk-check',
        DUET_SITE_ROOT: '../target/site',
        // The browser's Origin is Trunk's, not the server's.
        DUET_ALLOWED_ORIGINS: 'http://127.0.0.1:8081',
      },
      reuseExistingServer: false,
      stderr: 'pipe',
    },
    {
      command: 'trunk serve --no-autoreload',
      cwd: '..',
      url: 'http://127.0.0.1:8081/',
      // The first CSR build compiles the client for wasm.
      timeout: 15 * 60_000,
      reuseExistingServer: false,
    },
  ],
});
