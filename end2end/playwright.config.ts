import { defineConfig } from '@playwright/test';

// Debian's Chromium (no browser download is possible here), with a fake camera and microphone.
export default defineConfig({
  testDir: './tests',
  outputDir: './test-results',
  // Two cores: calls are real-time media, so run one test file at a time for stable timing.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  timeout: 90_000,
  expect: { timeout: 15_000 },
  reporter: [['list'], ['html', { open: 'never', outputFolder: 'playwright-report' }]],
  use: {
    browserName: 'chromium',
    headless: true,
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
    permissions: ['camera', 'microphone'],
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      args: [
        '--use-fake-ui-for-media-stream',
        '--use-fake-device-for-media-stream',
        // getDisplayMedia picks the fake 1280x720 screen by itself (the camera is 640x480).
        '--auto-select-desktop-capture-source=Entire screen',
        '--allow-loopback-in-peer-connection',
        '--autoplay-policy=no-user-gesture-required',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    },
  },
});
