// Where a call's set-up time goes: an init script that stamps (Date.now(), one clock for every
// page on this machine) the steps of a call as the browser sees them — signaling frames sent and
// received, devices opened, descriptions set, ICE and DTLS connected, the first decoded frame.
import type { BrowserContext, Page } from '@playwright/test';

function installTimeline() {
  const w = window as any;
  if (w.__timeline) return;
  const marks: { at: number; what: string }[] = [];
  w.__timeline = marks;
  const mark = (what: string) => marks.push({ at: Date.now(), what });
  const frameType = (data: unknown) => {
    try {
      return typeof data === 'string' ? JSON.parse(data).type : 'binary';
    } catch {
      return '?';
    }
  };
  // The moment the page receives the click on Accept: what the measured set-up time counts from.
  document.addEventListener(
    'click',
    (e) => {
      if ((e.target as Element).closest?.('[data-testid="accept"]')) mark('accept click');
    },
    { capture: true },
  );
  // Main-thread tasks of 50 ms or more: everything else on the page waits behind them.
  new PerformanceObserver((list) => {
    for (const task of list.getEntries()) {
      marks.push({ at: performance.timeOrigin + task.startTime, what: `busy ${Math.round(task.duration)} ms` });
    }
  }).observe({ type: 'longtask' });
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (this: WebSocket, data: any) {
    const type = frameType(data);
    if (type !== 'candidate') mark(`ws → ${type}`);
    return send.call(this, data);
  };
  const NativeWebSocket = WebSocket;
  w.WebSocket = function (this: unknown, ...args: any[]) {
    const socket = new (NativeWebSocket as any)(...args);
    socket.addEventListener('message', (e: MessageEvent) => {
      const type = frameType(e.data);
      if (type !== 'candidate') mark(`ws ← ${type}`);
    });
    return socket;
  } as any;
  w.WebSocket.prototype = NativeWebSocket.prototype;
  Object.assign(w.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
  const gum = MediaDevices.prototype.getUserMedia;
  MediaDevices.prototype.getUserMedia = async function (this: MediaDevices, c?: MediaStreamConstraints) {
    mark('getUserMedia called');
    const stream = await gum.call(this, c);
    mark('devices open');
    return stream;
  };
  const Native = RTCPeerConnection;
  w.RTCPeerConnection = function (this: unknown, config?: RTCConfiguration) {
    const pc = new Native(config);
    mark('peer connection created');
    for (const method of ['setLocalDescription', 'setRemoteDescription'] as const) {
      const original = (pc as any)[method].bind(pc);
      (pc as any)[method] = async (d?: RTCSessionDescriptionInit) => {
        await original(d);
        mark(`${method}(${(method === 'setLocalDescription' ? pc.localDescription : pc.remoteDescription)?.type})`);
      };
    }
    pc.addEventListener('icecandidate', (e) => {
      if (e.candidate && !(pc as any).__firstCandidate) {
        (pc as any).__firstCandidate = true;
        mark('first local candidate');
      }
    });
    pc.addEventListener('iceconnectionstatechange', () => mark(`ice ${pc.iceConnectionState}`));
    pc.addEventListener('connectionstatechange', () => mark(`connection ${pc.connectionState}`));
    const poll = async () => {
      if (pc.connectionState === 'closed') return;
      let frames = 0;
      (await pc.getStats()).forEach((s: any) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded ?? 0;
      });
      if (frames > 0) mark('first decoded frame');
      else setTimeout(poll, 5);
    };
    setTimeout(poll, 5);
    return pc;
  } as any;
  w.RTCPeerConnection.prototype = Native.prototype;
}

export async function installCallTimeline(context: BrowserContext) {
  await context.addInitScript(installTimeline);
}

export async function clearTimeline(page: Page) {
  await page.evaluate(() => ((window as any).__timeline.length = 0));
}

/** The marks of both pages on one clock, relative to `t0`. */
export async function mergedTimeline(t0: number, pages: { who: string; page: Page }[]) {
  const all: { ms: number; who: string; what: string }[] = [];
  for (const { who, page } of pages) {
    const marks: { at: number; what: string }[] = await page.evaluate(() => (window as any).__timeline);
    for (const m of marks) all.push({ ms: m.at - t0, who, what: m.what });
  }
  return all.sort((x, y) => x.ms - y.ms);
}
