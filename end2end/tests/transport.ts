// What a page's browser reports about its media transport, and the verification code computed
// from it independently of the app (docs/protocol.md defines it).
import { expect, type Page } from '@playwright/test';
import { createHash } from 'node:crypto';

export interface TransportInfo {
  /** The selected candidate pair's id: a new one after an ICE restart. */
  pairId: string;
  local: string;
  remote: string;
  localAddress: string;
  remoteAddress: string;
  localFingerprint: string;
  remoteFingerprint: string;
  /** The ICE username fragment of the local description: changes with every ICE restart. */
  localUfrag: string;
}

/** The selected candidate pair's candidates and the transport's DTLS fingerprints. Chromium may
 * leave the peer's certificate out of its (cached) statistics; once DTLS is connected the remote
 * description's fingerprint is that certificate's (the browser accepts no other), as the app's
 * own reading does (crates/client/src/verify.rs). */
export async function transportInfo(page: Page): Promise<TransportInfo | null> {
  return page.evaluate(async () => {
    const pc = (window as unknown as { __duetPc?: RTCPeerConnection }).__duetPc;
    if (!pc) return null;
    const report = await pc.getStats();
    const stats = new Map<string, any>();
    report.forEach((s: any) => stats.set(s.id, s));
    const transport = [...stats.values()].find((s) => s.type === 'transport' && s.selectedCandidatePairId);
    if (!transport) return null;
    const pair = stats.get(transport.selectedCandidatePairId);
    const local = stats.get(pair?.localCandidateId);
    const remote = stats.get(pair?.remoteCandidateId);
    const localCert = stats.get(transport.localCertificateId);
    const described = /a=fingerprint:(\S+) (\S+)/.exec(pc.remoteDescription?.sdp ?? '');
    const remoteCert =
      stats.get(transport.remoteCertificateId) ??
      (transport.dtlsState === 'connected' && described
        ? { fingerprintAlgorithm: described[1], fingerprint: described[2] }
        : undefined);
    if (!local || !remote || !localCert || !remoteCert) return null;
    const text = (c: any) => `${String(c.fingerprintAlgorithm).toLowerCase()} ${String(c.fingerprint).toUpperCase()}`;
    const ufrag = /a=ice-ufrag:(\S+)/.exec(pc.localDescription?.sdp ?? '')?.[1] ?? '';
    return {
      pairId: pair.id,
      local: local.candidateType,
      remote: remote.candidateType,
      localAddress: `${local.address}:${local.port}`,
      remoteAddress: `${remote.address}:${remote.port}`,
      localFingerprint: text(localCert),
      remoteFingerprint: text(remoteCert),
      localUfrag: ufrag,
    };
  });
}

/** The verification code as docs/protocol.md defines it, computed independently of the app. */
export function expectedCode(a: string, b: string): string {
  const [first, second] = [a, b].sort();
  const digest = createHash('sha256').update(`${first}\n${second}`).digest();
  const n = digest.readUInt32BE(0) % 1_000_000;
  const digits = n.toString().padStart(6, '0');
  return `${digits.slice(0, 3)} ${digits.slice(3)}`;
}

/** The code the page shows, read by its accessible name. */
export async function shownCode(page: Page, label = 'Verification code'): Promise<string> {
  const code = page.getByLabel(label, { exact: true });
  await expect(code).toHaveText(/^\d{3} \d{3}$/);
  return (await code.textContent()) ?? '';
}

/** The page's raw `transport`, `candidate-pair` and `certificate` statistics, for a failure's
 * report when `transportInfo` finds no selected pair. */
export async function rawTransportStats(page: Page): Promise<string> {
  return page.evaluate(async () => {
    const pc = (window as unknown as { __duetPc?: RTCPeerConnection }).__duetPc;
    if (!pc) return 'no peer connection';
    const kept: unknown[] = [{ connectionState: pc.connectionState, iceConnectionState: pc.iceConnectionState }];
    (await pc.getStats()).forEach((s: any) => {
      if (['transport', 'candidate-pair', 'certificate'].includes(s.type)) kept.push(s);
    });
    return JSON.stringify(kept);
  });
}
