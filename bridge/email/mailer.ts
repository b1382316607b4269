/**
 * Sending mail, behind a small interface so that the reporters never touch
 * nodemailer. Timeouts are short: a backup must not wait minutes on an SMTP
 * server that is gone (docs/design.md §6: email is independent of MQTT and of the run).
 */
import nodemailer from 'nodemailer';
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

export function smtpMailer(email: EmailConfig, opts: SmtpOptions = {}): Mailer {
  const timeout = opts.timeoutMs ?? 10_000;
  const { smtp } = email;
  return {
    describe: `smtp ${smtp.host}:${smtp.port}`,
    async send(message) {
      // the password is read per message so that a missing credential is an
      // email problem (logged), never a reason for the run to stop
      const auth =
        smtp.user !== undefined
          ? { user: smtp.user, pass: smtp.password_file ? readSecret(smtp.password_file, opts.env) : '' }
          : undefined;
      const transport = nodemailer.createTransport({
        host: smtp.host,
        port: smtp.port,
        secure: smtp.secure,
        auth,
        connectionTimeout: timeout,
        greetingTimeout: timeout,
        socketTimeout: timeout,
      });
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
