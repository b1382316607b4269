/**
 * offsite itself in the e2e guest: the checkout built and shipped in, put on the PATH the way
 * docs/setup.md tells users, configured, and the witnesses every scenario asserts on (an MQTT
 * and LED recorder, an SMTP sink) running beside it. Also the readers of what they saw.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { sh } from './host.js';
import type { Vm } from './vm.js';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const PREFIX = '/opt/offsite';
export const CONFIG = '/etc/offsite/config.yaml';
export const STATE_DIR = '/var/lib/offsite';
export const SOURCE = '/srv/backup';
export const NODE_ID = 'nas';
export const BASE_TOPIC = 'offsite';
export const SMTP_PORT = 2525;
/** The witnesses write to a tmpfs: they must still see what happens when a scenario fills the root filesystem. */
export const WITNESS_DIR = '/run/e2e-witness';
export const MAIL_DIR = `${WITNESS_DIR}/mails`;
export const RECORD = `${WITNESS_DIR}/record.jsonl`;
/** The "virtual device": a directory laid out like /sys/class/leds/<name> of a multicolour LED. */
export const LED_DIR = '/run/offsite-led/nas:rgb:status';
export const LED_BRIGHTNESS = 50;

/** Packages the guest never runs (linters, the compiler, the test loader): not worth copying. */
const NOT_SHIPPED = [
  '/.git',
  '/.e2e-work',
  '/.scratch',
  '/bench',
  '/dist',
  '/docs/**/*.png',
  '/docs/**/*.jpg',
  '/node_modules/@biomejs',
  '/node_modules/typescript',
  '/node_modules/@esbuild',
  '/node_modules/esbuild',
  '/node_modules/tsx',
  '/node_modules/fast-check',
  '/node_modules/@types',
];

/**
 * The checkout as a user would have it after `npm ci && npm run build`: copied to a staging
 * directory without what the guest never runs, and dist/ built there (tsc, chmod +x) from the current
 * sources (so the guest runs exactly what is checked out, not a stale dist/).
 */
export async function stageCheckout(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'offsite-e2e-stage-'));
  await sh('rsync', ['-a', ...NOT_SHIPPED.map((p) => `--exclude=${p}`), `${REPO}/`, `${dir}/`]);
  await sh(join(REPO, 'node_modules/.bin/tsc'), [
    '-p',
    join(REPO, 'tsconfig.build.json'),
    '--outDir',
    join(dir, 'dist'),
  ]);
  // what `npm run build` does after tsc
  await sh('chmod', ['+x', join(dir, 'dist/bridge/cli.js'), join(dir, 'dist/led-agent/cli.js')]);
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Into /opt/offsite, then docs/setup.md section 2 to the letter: two symlinks. */
export async function installCheckout(vm: Vm, stage: string): Promise<void> {
  await vm.copyIn(stage, PREFIX);
  await vm.run(
    `ln -s ${PREFIX}/dist/bridge/cli.js /usr/local/bin/offsite && ` +
      `ln -s ${PREFIX}/dist/led-agent/cli.js /usr/local/bin/offsite-led`,
  );
}

export interface ConfigOptions {
  drives?: unknown[];
  rsyncArgs?: string[];
  emailOn?: string[];
}

/** The configuration of docs/setup.md section 3, pointed at the guest's broker, mail sink and LED. */
export function configYaml(options: ConfigOptions = {}): string {
  return stringify({
    node_id: NODE_ID,
    state_dir: STATE_DIR,
    source: { path: SOURCE, ...(options.rsyncArgs ? { rsync_args: options.rsyncArgs } : {}) },
    // no drive yet: prepare-drive adds each (docs/setup.md sections 3 and 4)
    ...(options.drives ? { drives: options.drives } : {}),
    mqtt: { url: 'mqtt://127.0.0.1:1883', base_topic: BASE_TOPIC },
    email: {
      smtp: { host: '127.0.0.1', port: SMTP_PORT, secure: false },
      from: 'nas@e2e.test',
      to: ['me@e2e.test'],
      ...(options.emailOn ? { on: options.emailOn } : {}),
    },
    led: { driver: 'sysfs', path: LED_DIR, brightness: LED_BRIGHTNESS },
  });
}

/** Edits the guest's configuration (keeping the drives prepare-drive added). */
export async function editConfig(vm: Vm, edit: (config: Record<string, unknown>) => void): Promise<void> {
  const { parse } = await import('yaml');
  const config = parse((await vm.readFile(CONFIG)).toString()) as Record<string, unknown>;
  edit(config);
  await vm.writeFile(CONFIG, stringify(config), 0o644);
}

/**
 * What there is to back up: a few MB of random data, names in several scripts, a symlink,
 * an empty directory.
 */
export async function makeSource(vm: Vm): Promise<void> {
  await vm.run(
    [
      `mkdir -p '${SOURCE}/photos/2024 été' '${SOURCE}/документы' '${SOURCE}/empty'`,
      `head -c 1500000 /dev/urandom > '${SOURCE}/photos/2024 été/plage.jpg'`,
      `head -c 700000 /dev/urandom > '${SOURCE}/документы/отчёт.pdf'`,
      `head -c 300000 /dev/urandom > '${SOURCE}/日本語のファイル.bin'`,
      `echo 'notes of the NAS' > '${SOURCE}/notes.txt'`,
      `ln -s 'photos/2024 été/plage.jpg' '${SOURCE}/latest-photo'`,
    ].join(' && '),
  );
}

/** The LED class directory of a multicolour (RGB) LED, its files given to the agent's group. */
export async function makeLed(vm: Vm): Promise<void> {
  await vm.run(
    `mkdir -p '${LED_DIR}' && cd '${LED_DIR}' && echo 0 > brightness && echo 255 > max_brightness && ` +
      `echo 'red green blue' > multi_index && echo '0 0 0' > multi_intensity && echo '[none] timer heartbeat' > trigger`,
  );
}

/** After `offsite install` made the group: what the udev rule does for a real LED. */
export async function giveLedToAgent(vm: Vm): Promise<void> {
  await vm.run(
    `cd '${LED_DIR}' && chgrp offsite-led brightness multi_intensity trigger && chmod 0664 brightness multi_intensity trigger`,
  );
}

export async function startWitnesses(vm: Vm): Promise<void> {
  const guest = `${PREFIX}/test/e2e/guest`;
  await vm.run(`mkdir -p ${WITNESS_DIR}`);
  await vm.background('smtp', `exec node ${guest}/smtp-sink.mjs ${SMTP_PORT} ${MAIL_DIR}`);
  await vm.background(
    'recorder',
    `exec node ${guest}/recorder.mjs ${RECORD} mqtt://127.0.0.1:1883 ${BASE_TOPIC}/${NODE_ID} '${LED_DIR}' ${CONFIG}`,
  );
  await vm.waitFor(`journalctl -u e2e-smtp -o cat | grep -q 'smtp sink on'`, { timeoutMs: 60_000 });
  await vm.waitFor(`grep -q '"connected"' ${RECORD}`, { timeoutMs: 60_000 });
}

export interface Record_ {
  t: number;
  kind: 'mqtt' | 'at-success' | 'led' | 'connected';
  topic?: string;
  retain?: boolean;
  // biome-ignore lint/suspicious/noExplicitAny: JSON from the guest, checked by the assertions
  payload?: any;
  drive?: string;
  mounted?: boolean | null;
  mapper?: boolean;
  brightness?: string;
  multi_intensity?: string;
}

/** Where the witnesses' records stand now; `records(vm, mark)` returns only what came after. */
export async function recordMark(vm: Vm): Promise<number> {
  const r = await vm.exec(`wc -l < ${RECORD}`);
  return Number(r.stdout.trim() || 0);
}

/** The witnesses' records, complete lines only: the recorder may be writing the last one as it is read. */
export async function records(vm: Vm, mark = 0): Promise<Record_[]> {
  const lines = (await vm.readFile(RECORD)).toString().split('\n');
  lines.pop(); // what follows the last newline: nothing, or a line not yet written out
  return lines
    .filter(Boolean)
    .slice(mark)
    .map((l) => JSON.parse(l) as Record_);
}

/** Live (not retained) status payloads, in order. */
export function statuses(
  recs: Record_[],
): Array<{ state: string; drive: string | null; step: string | null; message: string | null }> {
  return recs
    .filter((r) => r.kind === 'mqtt' && !r.retain && r.topic === `${BASE_TOPIC}/${NODE_ID}/status`)
    .map((r) => r.payload);
}

/** The LED as the agent wrote it: `<brightness>|<r g b>`, each change once. */
export function ledChanges(recs: Record_[]): string[] {
  return recs.filter((r) => r.kind === 'led').map((r) => `${r.brightness}|${r.multi_intensity}`);
}

/** The files the agent writes for a steady colour: brightness is the cap, the colour is multi_intensity. */
export function ledFor(hex: string): string {
  const n = Number.parseInt(hex.slice(1), 16);
  const cap = Math.round((255 * LED_BRIGHTNESS) / 100);
  return `${cap}|${(n >> 16) & 255} ${(n >> 8) & 255} ${n & 255}`;
}

export async function mails(vm: Vm): Promise<string[]> {
  const list = await vm.exec(`ls ${MAIL_DIR} | grep '\\.eml$' | sort -n`);
  const names = list.stdout.split('\n').filter(Boolean);
  return Promise.all(names.map(async (n) => (await vm.readFile(`${MAIL_DIR}/${n}`)).toString()));
}

/** The Subject header, unfolded and with its RFC 2047 encoded words (=?UTF-8?Q?...?=) decoded. */
export function subject(mail: string): string {
  const raw = /^Subject: (.*(?:\r?\n[ \t].*)*)/m.exec(mail)?.[1]?.replace(/\r?\n[ \t]/g, ' ') ?? '';
  return raw
    .replace(/\?=\s+=\?/g, '?==?') // white space between encoded words is not part of the text
    .replace(/=\?([^?]+)\?([QqBb])\?([^?]*)\?=/g, (_, _charset: string, enc: string, text: string) =>
      enc.toUpperCase() === 'B'
        ? Buffer.from(text, 'base64').toString('utf8')
        : Buffer.from(
            text
              .replace(/_/g, ' ')
              .replace(/=([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(Number.parseInt(h, 16))),
            'latin1',
          ).toString('utf8'),
    );
}

// biome-ignore lint/suspicious/noExplicitAny: the ledger's JSON, checked by the assertions
export async function ledger(vm: Vm): Promise<any> {
  return JSON.parse((await vm.readFile(`${STATE_DIR}/ledger.json`)).toString());
}

/** Everything that explains a failed scenario: offsite's journal, the witnesses', the console. */
export async function diagnostics(vm: Vm): Promise<string> {
  const parts: string[] = [];
  for (const [what, cmd] of [
    [
      'journal (offsite units)',
      "journalctl -u 'offsite-*' -u 'systemd-cryptsetup@*' --no-pager -n 200 -o short-precise",
    ],
    ['unit states', "systemctl list-units --all --no-pager 'offsite*' 'systemd-cryptsetup@*' 'e2e-*'"],
    ['mounts and mappings', 'grep offsite /proc/mounts; ls -l /dev/mapper'],
    ['records (last 40)', `tail -n 40 ${RECORD}`],
  ] as const) {
    const r = await vm.exec(cmd).catch((e: Error) => ({ stdout: '', stderr: e.message }));
    parts.push(`--- ${what} ---\n${r.stdout}${r.stderr}`);
  }
  parts.push(`--- guest console (last lines) ---\n${await vm.consoleTail(30)}`);
  return parts.join('\n');
}
