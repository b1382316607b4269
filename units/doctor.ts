/**
 * `offsite doctor`: everything a run needs, checked, each problem with the
 * command that fixes it. Checks are data: a name and a function returning
 * findings. Adding a check is one entry in CHECKS.
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import mqtt from 'mqtt';
import nodemailer from 'nodemailer';
import { type Config, describeKey } from '../bridge/config.js';
import { smtpTransportOptions } from '../bridge/email/mailer.js';
import { errorMessage } from '../bridge/error-message.js';
import { which } from '../bridge/exec.js';
import { anonymousAccess } from '../bridge/mqtt/anonymous.js';
import { clientOptions } from '../bridge/mqtt/connection.js';
import { topicsFor } from '../bridge/mqtt/messages.js';
import { readToken, tokenFile } from '../bridge/steps/marker.js';
import { BLINKSTICK } from '../led-agent/drivers/blinkstick.js';
import { plan } from './generate.js';
import { planInstall, readManifest } from './install.js';
import type { InstallPaths } from './paths.js';
import { headerFileFor } from './prepare/prepare.js';

export interface Finding {
  ok: boolean;
  what: string;
  /** the command (or action) that fixes it */
  fix?: string;
  /** not a problem for a run, but worth fixing: printed as WARN, exit status unchanged */
  warning?: boolean;
}

export interface DoctorContext {
  config: Config;
  root: string;
  /** paths to generate units for when nothing is installed yet */
  paths: InstallPaths;
  timeoutMs: number;
}

export interface Check {
  name: string;
  run(ctx: DoctorContext): Promise<Finding[]>;
}

const ok = (what: string): Finding => ({ ok: true, what });
/** What a key is for, as the schema describes it (no final full stop: it goes inside a sentence). */
const about = (key: string) => describeKey(key)?.replace(/\.$/, '') ?? key;
/** "source.path in /etc/offsite/config.yaml (What is copied: ...)" */
const setting = (key: string, file: string) => `${key} in ${file} (${about(key)})`;
const problem = (what: string, fix: string): Finding => ({ ok: false, what, fix });
const warning = (what: string, fix: string): Finding => ({ ok: true, warning: true, what, fix });
const rootFlag = (ctx: DoctorContext) => (ctx.root === '/' ? '' : ` --root ${ctx.root}`);

const keyFiles: Check = {
  name: 'key files',
  async run({ config }) {
    const out: Finding[] = [];
    for (const d of config.drives) {
      if (d.kind !== 'luks') continue;
      if (!existsSync(d.keyFile)) {
        out.push(
          problem(
            `drive ${d.name}: the key file ${d.keyFile} is missing`,
            `restore ${d.keyFile} from your copy (mode 0400, owner root)`,
          ),
        );
        continue;
      }
      const st = statSync(d.keyFile);
      const mode = st.mode & 0o777;
      if (st.uid !== 0 || (mode !== 0o400 && mode !== 0o600))
        out.push(
          problem(
            `drive ${d.name}: ${d.keyFile} is mode ${mode.toString(8).padStart(4, '0')}, owner uid ${st.uid} (anyone who reads it can open the drive)`,
            `chown root:root ${d.keyFile} && chmod 0400 ${d.keyFile}`,
          ),
        );
      else
        out.push(ok(`drive ${d.name}: key file ${d.keyFile} (${mode.toString(8).padStart(4, '0')}, root)`));
    }
    return out;
  },
};

const headers: Check = {
  name: 'LUKS header backups',
  async run({ config }) {
    return config.drives.flatMap((d) => {
      if (d.kind !== 'luks') return [];
      const file = headerFileFor(config, d.name);
      return existsSync(file)
        ? [ok(`drive ${d.name}: header backup ${file}`)]
        : [
            problem(
              `drive ${d.name}: no LUKS header backup at ${file}`,
              `plug drive ${d.name} in, then: cryptsetup luksHeaderBackup /dev/disk/by-uuid/${d.luksUuid} --header-backup-file ${file}`,
            ),
          ];
    });
  },
};

const enrolment: Check = {
  name: 'enrolment tokens',
  async run({ config }) {
    return config.drives.map((d) => {
      const file = tokenFile(config.state_dir, d.name);
      const enrol = `plug drive ${d.name} in, then: offsite enrol ${d.name}`;
      try {
        if (!readToken(config.state_dir, d.name))
          return problem(
            `drive ${d.name}: not enrolled on this NAS (no ${file}): every run refuses it`,
            enrol,
          );
      } catch (e) {
        return problem(`drive ${d.name}: ${errorMessage(e)}`, `${enrol} --force`);
      }
      const mode = statSync(file).mode & 0o777;
      const dirMode = statSync(dirname(file)).mode & 0o777;
      if ((mode & 0o077) !== 0 || (dirMode & 0o077) !== 0)
        return problem(
          `drive ${d.name}: ${file} can be read by others than root (anyone who reads it can make an impostor this NAS accepts)`,
          `chmod 0700 ${dirname(file)} && chmod 0600 ${file}`,
        );
      return ok(`drive ${d.name}: enrolled (${file})`);
    });
  },
};

const installed: Check = {
  name: 'installed units',
  async run(ctx) {
    const manifest = readManifest(ctx.root);
    if (!manifest)
      return [problem(`offsite is not installed in ${ctx.root}`, `offsite install${rootFlag(ctx)}`)];
    const paths = { ...manifest.paths, config: ctx.paths.config };
    const { changes } = planInstall(ctx.root, plan(ctx.config, paths), paths);
    if (!changes.length) return [ok('units, links, crypttab and fstab agree with the configuration')];
    return [
      problem(
        `${changes.length} installed file(s) differ from the configuration: ${changes.map((c) => c.path).join(', ')}`,
        `offsite install${rootFlag(ctx)} --dry-run (to see the difference), then offsite install${rootFlag(ctx)}`,
      ),
    ];
  },
};

const tools: Check = {
  name: 'programs',
  async run({ config }) {
    const needed: Array<[string, string]> = [
      ['rsync', 'rsync'],
      ['mount', 'mount'],
    ];
    if (config.drives.some((d) => d.kind === 'luks')) needed.push(['cryptsetup', 'cryptsetup']);
    const lock = config.source.lock?.[0];
    if (lock) needed.push([lock, basename(lock) === 'borg' ? 'borgbackup' : basename(lock)]);
    const out: Finding[] = [];
    for (const [program, pkg] of needed)
      out.push(
        (await which(program))
          ? ok(`${program} is installed`)
          : problem(`${program} is not installed`, `apt install ${pkg}`),
      );
    // a run copies without it, but its rsync then outlives a `kill -9` of the run alone (bridge/exec.ts)
    out.push(
      (await which('setpriv'))
        ? ok('setpriv is installed')
        : warning(
            'setpriv is not installed: rsync does not die with a run killed alone (kill -9); it copies on, unverified, until the next run of a drive stops it',
            'apt install util-linux',
          ),
    );
    return out;
  },
};

const source: Check = {
  name: 'source',
  async run({ config }) {
    const path = config.source.path;
    try {
      if (!statSync(path).isDirectory()) throw new Error('not a directory');
      accessSync(path, constants.R_OK | constants.X_OK);
      return [ok(`source ${path} is readable`)];
    } catch (e) {
      return [problem(`source ${path}: ${errorMessage(e)}`, `check ${setting('source.path', config.file)}`)];
    }
  },
};

const broker: Check = {
  name: 'MQTT broker',
  async run({ config, timeoutMs }) {
    const m = config.mqtt;
    if (!m?.enabled) return [];
    try {
      // the options a run connects with: its login, its CA for mqtts://
      const options = clientOptions(m, { role: 'doctor', connectTimeoutMs: timeoutMs, reconnectMs: 0 });
      const client = await mqtt.connectAsync(m.url, options);
      await client.endAsync(true);
      return [ok(`MQTT broker ${m.url} answers`)];
    } catch (e) {
      return [
        problem(
          `MQTT broker ${m.url} does not answer (${errorMessage(e)})`,
          `systemctl status mosquitto, or fix mqtt.url / mqtt.username / mqtt.password_file in ${config.file} (${about('mqtt.url')})`,
        ),
      ];
    }
  },
};

const anonymous: Check = {
  name: 'broker access',
  async run({ config, timeoutMs }) {
    const m = config.mqtt;
    if (!m?.enabled) return [];
    const t = topicsFor(config);
    const access = await anonymousAccess(m, t.probe, timeoutMs);
    if (access === 'unknown') return [];
    if (access === 'publishes')
      return [
        warning(
          `a client without a login may publish under ${t.root}/ on ${m.url}: anyone who reaches the broker can fake a status or a drive (turn the LED green, tell Home Assistant a backup succeeded)`,
          'give the broker a password file and an ACL where only offsite writes its topics (docs/security.md, "Closing the broker")',
        ),
      ];
    return [
      ok(
        access === 'login refused'
          ? 'the broker refuses clients without a login'
          : `a client without a login may not publish under ${t.root}/`,
      ),
    ];
  },
};

const smtp: Check = {
  name: 'SMTP server',
  async run({ config, timeoutMs }) {
    const e = config.email;
    if (!e) return [];
    const where = `${e.smtp.host}:${e.smtp.port}`;
    const transport = nodemailer.createTransport(smtpTransportOptions(e, { timeoutMs }));
    try {
      await transport.verify();
      return [ok(`SMTP server ${where} answers`)];
    } catch (err) {
      return [
        problem(
          `SMTP server ${where} does not answer (${errorMessage(err)})`,
          /STARTTLS/.test(errorMessage(err))
            ? `use secure: true (port 465) or a server that offers STARTTLS; email.smtp.allow_plaintext_login: true would send the password in clear (docs/email.md)`
            : `fix ${setting('email.smtp', config.file)}, or start the mail server`,
        ),
      ];
    } finally {
      transport.close();
    }
  },
};

const notifications: Check = {
  name: 'notifications',
  async run({ config }) {
    if (config.mqtt?.enabled || config.email) return [];
    return [
      warning(
        'neither email nor MQTT is configured: nobody hears of a failed or overdue backup but the LED',
        `add an email: section (docs/email.md) or an mqtt: section (docs/mqtt.md) to ${config.file}`,
      ),
    ];
  },
};

const led: Check = {
  name: 'LED',
  async run({ config }) {
    const l = config.led;
    if (l.driver === 'sysfs' && l.path) {
      const file = join(l.path, 'brightness');
      try {
        accessSync(file, constants.W_OK);
        return [ok(`LED ${l.path} is there`)];
      } catch (e) {
        return [
          problem(
            `LED ${file}: ${(e as NodeJS.ErrnoException).code}`,
            `ls /sys/class/leds/ and fix ${setting('led.path', config.file)}`,
          ),
        ];
      }
    }
    if (l.driver !== 'blinkstick') return [];
    let devices: Array<{ vendorId: number; productId: number; serialNumber?: string }>;
    try {
      devices = await (await import('node-hid')).default.devicesAsync();
    } catch (e) {
      return [
        problem(
          `node-hid cannot be loaded (${errorMessage(e)})`,
          'npm install -g node-hid@3 (or choose led.driver sysfs/none)',
        ),
      ];
    }
    const found = devices.filter(
      (d) =>
        d.vendorId === BLINKSTICK.vendorId &&
        d.productId === BLINKSTICK.productId &&
        (!l.serial || d.serialNumber === l.serial),
    );
    return found.length
      ? [ok(`BlinkStick${l.serial ? ` ${l.serial}` : ''} is plugged in`)]
      : [
          problem(
            `no BlinkStick${l.serial ? ` with serial ${l.serial}` : ''} is plugged in`,
            'plug it in (lsusb | grep 20a0:41e5)',
          ),
        ];
  },
};

export const CHECKS: Check[] = [
  keyFiles,
  headers,
  enrolment,
  installed,
  tools,
  source,
  broker,
  anonymous,
  smtp,
  notifications,
  led,
];

export async function doctor(ctx: DoctorContext, checks: Check[] = CHECKS): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const check of checks) {
    try {
      findings.push(...(await check.run(ctx)));
    } catch (e) {
      findings.push(
        problem(`${check.name}: could not check (${errorMessage(e)})`, 'offsite doctor --verbose'),
      );
    }
  }
  return findings;
}
