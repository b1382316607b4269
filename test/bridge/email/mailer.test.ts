/**
 * The SMTP password never crosses a network in clear: with a login, a server
 * that is not this machine gets it only over TLS, unless the configuration
 * says allow_plaintext_login. Against a real smtp-server that offers no
 * STARTTLS (what a man in the middle shows), reached by this machine's host
 * name, which is not a loopback name.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SMTPServer } from 'smtp-server';
import { type EmailConfig, parseConfig } from '../../../bridge/config.js';
import { isLoopbackHost, smtpMailer, smtpTransportOptions } from '../../../bridge/email/mailer.js';
import { freePort } from '../../../harness/broker.js';

const PASSWORD = 'correct horse';
const secret = join(mkdtempSync(join(tmpdir(), 'offsite-smtp-')), 'smtp.password');
writeFileSync(secret, `${PASSWORD}\n`, { mode: 0o600 });

function email(smtp: Record<string, unknown>): EmailConfig {
  return parseConfig({
    source: { path: '/srv/backup' },
    email: { smtp, from: 'nas@example.org', to: ['me@example.org'] },
  }).email!;
}

describe('SMTP login and TLS', () => {
  /** a server that takes a plain-text login and offers no STARTTLS, and remembers every password it saw */
  const seen: string[] = [];
  const delivered: string[] = [];
  let port = 0;
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authOptional: true,
    logger: false,
    onAuth(auth, _session, callback) {
      seen.push(auth.password ?? '');
      callback(null, { user: auth.username });
    },
    onData(stream, session, callback) {
      stream.resume();
      stream.on('end', () => {
        delivered.push(session.envelope.rcptTo.map((r) => r.address).join(','));
        callback();
      });
    },
  });
  before(async () => {
    port = await freePort();
    await new Promise<void>((resolve) => server.listen(port, '0.0.0.0', () => resolve()));
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const message = { subject: 'offsite: test', text: 'hello' };

  it('a login to a server that is not this machine, offering no STARTTLS, fails before the password is sent', async () => {
    assert.equal(isLoopbackHost(hostname()), false, `${hostname()} is a name, not a loopback address`);
    const before = { seen: seen.length, delivered: delivered.length };
    const mailer = smtpMailer(email({ host: hostname(), port, user: 'nas', password_file: secret }), {
      timeoutMs: 5000,
    });
    await assert.rejects(mailer.send(message), /STARTTLS/);
    assert.equal(seen.length, before.seen, 'the server never saw the password');
    assert.equal(delivered.length, before.delivered);
  });

  it('allow_plaintext_login: true lets it go in clear (what the key is for, and why it is dangerous)', async () => {
    const before = seen.length;
    const mailer = smtpMailer(
      email({ host: hostname(), port, user: 'nas', password_file: secret, allow_plaintext_login: true }),
      { timeoutMs: 5000 },
    );
    await mailer.send(message);
    assert.deepEqual(seen.slice(before), [PASSWORD]);
  });

  it('this machine itself (loopback) may take the login without TLS, and a server without login gets the mail', async () => {
    const before = delivered.length;
    await smtpMailer(email({ host: '127.0.0.1', port, user: 'nas', password_file: secret })).send(message);
    await smtpMailer(email({ host: hostname(), port })).send(message);
    assert.equal(delivered.length, before + 2);
  });

  it('asks nodemailer for TLS exactly when a login goes to a server that is not this machine', () => {
    const login = { user: 'nas', password_file: secret };
    const requireTLS = (smtp: Record<string, unknown>) => smtpTransportOptions(email(smtp)).requireTLS;
    assert.equal(requireTLS({ host: 'smtp.example.org', port: 587, ...login }), true);
    assert.equal(requireTLS({ host: '192.0.2.10', port: 25, ...login }), true);
    // secure: TLS from the first byte
    const secure = smtpTransportOptions(
      email({ host: 'smtp.example.org', port: 465, secure: true, ...login }),
    );
    assert.equal(secure.secure, true);
    assert.equal(requireTLS({ host: 'smtp.example.org', port: 25 }), false, 'no login, nothing to protect');
    for (const host of ['127.0.0.1', '127.0.1.1', 'localhost', '[::1]', '::1'])
      assert.equal(requireTLS({ host, port: 25, ...login }), false, host);
    assert.equal(
      requireTLS({ host: 'smtp.example.org', port: 25, allow_plaintext_login: true, ...login }),
      false,
    );
  });
});
