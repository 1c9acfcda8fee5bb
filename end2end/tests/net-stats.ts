// What a network test reads from the browser's own statistics (`window.__duetPc`, the app's
// current peer connection): the selected candidate pair, and inbound totals and rates.
import type { Page } from '@playwright/test';

export interface Candidate {
  address: string;
  port: number;
  type: string;
  protocol: string;
}

export interface SelectedPair {
  id: string;
  local: Candidate;
  remote: Candidate;
}

/** The transport's selected candidate pair, or null before there is one. */
export async function selectedPair(page: Page): Promise<SelectedPair | null> {
  return page.evaluate(async () => {
    const pc = (window as unknown as { __duetPc?: RTCPeerConnection }).__duetPc;
    if (!pc) return null;
    const stats = new Map<string, any>();
    (await pc.getStats()).forEach((s: any) => stats.set(s.id, s));
    const transport = [...stats.values()].find((s) => s.type === 'transport' && s.selectedCandidatePairId);
    const pair = transport && stats.get(transport.selectedCandidatePairId);
    const local = pair && stats.get(pair.localCandidateId);
    const remote = pair && stats.get(pair.remoteCandidateId);
    if (!local || !remote) return null;
    const candidate = (c: any) => ({
      address: String(c.address ?? c.ip),
      port: Number(c.port),
      type: String(c.candidateType),
      protocol: String(c.protocol),
    });
    return { id: String(pair.id), local: candidate(local), remote: candidate(remote) };
  });
}

export interface InboundTotals {
  /** The statistics' own clock, milliseconds. */
  timestamp: number;
  videoBytes: number;
  framesDecoded: number;
  /** Audio and video together. */
  packetsReceived: number;
  packetsLost: number;
}

/** Inbound RTP totals of the page's current peer connection since it started. */
export async function inboundTotals(page: Page): Promise<InboundTotals> {
  return page.evaluate(async () => {
    const pc = (window as unknown as { __duetPc?: RTCPeerConnection }).__duetPc;
    const totals = { timestamp: performance.timeOrigin + performance.now(), videoBytes: 0, framesDecoded: 0, packetsReceived: 0, packetsLost: 0 };
    if (!pc) return totals;
    (await pc.getStats()).forEach((s: any) => {
      if (s.type !== 'inbound-rtp') return;
      totals.timestamp = s.timestamp;
      totals.packetsReceived += s.packetsReceived ?? 0;
      totals.packetsLost += s.packetsLost ?? 0;
      if (s.kind === 'video') {
        totals.videoBytes += s.bytesReceived ?? 0;
        totals.framesDecoded += s.framesDecoded ?? 0;
      }
    });
    return totals;
  });
}

export interface InboundRate {
  videoKbps: number;
  framesPerSecond: number;
  lossPercent: number;
  seconds: number;
}

/** Inbound rates over a measurement window of `ms` milliseconds: the two samples are taken that
 * far apart on purpose (a bitrate is bytes over time), timed by the statistics' own clock. */
export async function inboundRate(page: Page, ms: number): Promise<InboundRate> {
  const first = await inboundTotals(page);
  await page.waitForTimeout(ms);
  const last = await inboundTotals(page);
  const seconds = (last.timestamp - first.timestamp) / 1000;
  const received = last.packetsReceived - first.packetsReceived;
  const lost = last.packetsLost - first.packetsLost;
  return {
    videoKbps: ((last.videoBytes - first.videoBytes) * 8) / 1000 / seconds,
    framesPerSecond: (last.framesDecoded - first.framesDecoded) / seconds,
    lossPercent: received + lost > 0 ? (100 * lost) / (received + lost) : 0,
    seconds,
  };
}

/** The page's outgoing video bitrate over a window of `ms` milliseconds (statistics' clock). */
export async function outboundVideoKbps(page: Page, ms: number): Promise<number> {
  const read = () =>
    page.evaluate(async () => {
      const pc = (window as unknown as { __duetPc?: RTCPeerConnection }).__duetPc;
      const total = { timestamp: 0, bytes: 0 };
      if (!pc) return total;
      (await pc.getStats()).forEach((s: any) => {
        if (s.type !== 'outbound-rtp' || s.kind !== 'video') return;
        total.timestamp = s.timestamp;
        total.bytes += s.bytesSent ?? 0;
      });
      return total;
    });
  const first = await read();
  await page.waitForTimeout(ms);
  const last = await read();
  return ((last.bytes - first.bytes) * 8) / (last.timestamp - first.timestamp);
}

/** What the app asked of its video sender (`RTCRtpSender.getParameters()`, first encoding). */
export async function videoSendLimits(page: Page): Promise<{ maxBitrate?: number; scaleResolutionDownBy?: number }> {
  return page.evaluate(() => {
    const pc = (window as unknown as { __duetPc?: RTCPeerConnection }).__duetPc;
    const sender = pc?.getSenders().find((s) => s.track?.kind === 'video');
    const encoding = sender?.getParameters().encodings?.[0] ?? {};
    return { maxBitrate: encoding.maxBitrate, scaleResolutionDownBy: encoding.scaleResolutionDownBy };
  });
}
