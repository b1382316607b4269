// The guest's mail server for the e2e scenarios: accepts every message on 127.0.0.1:<port>
// and writes each to <dir>/<n>.eml, so a scenario can count and read the mails a run sent.
// Runs from the copied checkout, so `smtp-server` resolves from /opt/offsite/node_modules.
import { mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';

const [port = '2525', dir = '/run/e2e-witness/mails'] = process.argv.slice(2);
mkdirSync(dir, { recursive: true });
let n = readdirSync(dir).filter((f) => f.endsWith('.eml')).length;

const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS', 'AUTH'],
  logger: false,
  onData(stream, _session, done) {
    const parts = [];
    stream.on('data', (c) => parts.push(c));
    stream.on('end', () => {
      n += 1;
      const file = join(dir, `${n}.eml`);
      // written whole, then renamed: a reader never sees half a mail
      writeFileSync(`${file}.tmp`, Buffer.concat(parts));
      renameSync(`${file}.tmp`, file);
      console.log(`mail ${n} received`);
      done();
    });
  },
});
server.listen(Number(port), '127.0.0.1', () =>
  console.log(`smtp sink on 127.0.0.1:${port}, mails in ${dir}`),
);
