/** Email: the mailer (nodemailer at the edge), the message texts, and the run reporter. */
export {
  type Delivery,
  EmailReporter,
  type EmailReporterOptions,
} from '../reporters/email.js';
export { type Mailer, type MailMessage, smtpMailer } from './mailer.js';
export { failureMail, ledgerResetMail, overdueMail, successMail, warningMail } from './messages.js';
