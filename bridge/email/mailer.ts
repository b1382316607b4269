/**
 * Sending mail, behind a small interface so that the reporters never touch
 * nodemailer. Timeouts are short: a backup must not wait minutes on an SMTP
 * server that is gone (docs/design.md §6: email is independent of MQTT and of the run).
 */
import nodemailer from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import { type EmailConfig, readSecret } from '../config.js';

export interface MailMessage {
  subject: string;
  /** plain text, UTF-8 */
  text: string;
}

export interface Mailer {
  /** where the mail goes, for log lines ("smtp 127.0.0.1:25") */
  readonly describe: string;
  /** resolves when the server accepted the message; rejects with the reason otherwise */
  send(message: MailMessage): Promise<void>;
}

export interface SmtpOptions {
  env?: NodeJS.ProcessEnv;
  /** connect, greeting and idle timeout in ms (default 10 s each) */
  timeoutMs?: number;
}

/** A host name that can only mean this machine: nothing on the way can read what goes to it. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * nodemailer's options for the configured server. A login to a server that is
 * not this machine goes over TLS only: from the start (`secure: true`), or
 * after STARTTLS, which is then required (`requireTLS`): a server, or a man
 * in the middle, that offers no STARTTLS gets no password. Only
 * `allow_plaintext_login: true` says otherwise. The password is read here, so
 * a missing credential is an email problem, never a reason for a run to stop.
 */
export function smtpTransportOptions(email: EmailConfig, opts: SmtpOptions = {}): SMTPTransport.Options {
  const timeout = opts.timeoutMs ?? 10_000;
  const { smtp } = email;
  const auth =
    smtp.user !== undefined
      ? { user: smtp.user, pass: smtp.password_file ? readSecret(smtp.password_file, opts.env) : '' }
      : undefined;
  const plainLoginAllowed = smtp.allow_plaintext_login || isLoopbackHost(smtp.host);
  return {
    host: smtp.host,
    port: smtp.port,
    secure: smtp.secure,
    requireTLS: Boolean(auth) && !smtp.secure && !plainLoginAllowed,
    auth,
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout,
  };
}

export function smtpMailer(email: EmailConfig, opts: SmtpOptions = {}): Mailer {
  const { smtp } = email;
  return {
    describe: `smtp ${smtp.host}:${smtp.port}`,
    async send(message) {
      // built per message: a missing password file is then an email problem (logged), never a
      // reason for the run to stop
      const transport = nodemailer.createTransport(smtpTransportOptions(email, opts));
      try {
        await transport.sendMail({
          from: email.from,
          to: email.to,
          subject: message.subject,
          text: message.text,
          // RFC 3834: tells mail servers and vacation responders not to answer
          headers: { 'Auto-Submitted': 'auto-generated' },
        });
      } finally {
        transport.close();
      }
    },
  };
}
