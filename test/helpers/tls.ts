/** A self-signed certificate for 127.0.0.1 (a day long), for a broker that speaks only TLS. */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function selfSignedCert(): { dir: string; cert: string; key: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'offsite-tls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost'],
      ...['-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert],
    ],
    { stdio: 'ignore' },
  );
  // mosquitto started as root reads its files as the `mosquitto` user
  chmodSync(dir, 0o755);
  chmodSync(key, 0o644);
  return { dir, cert, key, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
