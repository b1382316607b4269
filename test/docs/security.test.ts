/**
 * docs/security.md "Closing the broker", as a user follows it: its mosquitto
 * configuration and ACL, exactly as written (only the listener moved to a free
 * loopback port), on a real mosquitto; offsite logs in as the page says, and
 * Home Assistant can read everything and fake nothing.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { parse } from 'yaml';
import { parseConfig } from '../../bridge/config.js';
import { discoveryTopicFor } from '../../bridge/homeassistant/discovery.js';
import { publishDiscovery } from '../../bridge/homeassistant/publish.js';
import { anonymousAccess } from '../../bridge/mqtt/anonymous.js';
import { MqttLink } from '../../bridge/mqtt/link.js';
import { statusMessage, topicsFor } from '../../bridge/mqtt/messages.js';
import { publishOnce } from '../../bridge/mqtt/oneshot.js';
import { homeAssistantStatusTopic, statusSchema, topics } from '../../bridge/protocol.js';
import { freePort, MOSQUITTO } from '../../harness/broker.js';
import { memoryLog } from '../bridge/mqtt/helpers.js';

const page = readFileSync(new URL('../../docs/security.md', import.meta.url), 'utf8');
const section = page.slice(page.indexOf('## Closing the broker'));

/** the fenced block whose first line names `file` */
function block(file: string): string {
  const found = [...section.matchAll(/```[a-z]*\n([\s\S]*?)```/g)].find((m) =>
    m[1]!.startsWith(`# ${file}\n`),
  );
  assert.ok(found, `docs/security.md has no block for ${file}`);
  return found[1]!;
}

const PASSWORDS = { offsite: 'nas-secret', homeassistant: 'ha-secret' };
const dir = mkdtempSync(join(tmpdir(), 'offsite-security-'));
let port: number;
let broker: ChildProcess;
let url: string;

/** connect as `user` (or anonymously), or the reason the broker gave for refusing */
async function client(user?: keyof typeof PASSWORDS) {
  return mqtt.connectAsync(url, {
    reconnectPeriod: 0,
    connectTimeout: 3000,
    ...(user ? { username: user, password: PASSWORDS[user] } : {}),
  });
}

/** the retained payload on `topic` as `user` sees it ('' when there is none) */
async function retainedAs(user: keyof typeof PASSWORDS, topic: string): Promise<string> {
  const c = await client(user);
  let got = '';
  c.on('message', (t, payload, packet) => {
    if (t === topic && packet.retain) got = payload.toString();
  });
  await c.subscribeAsync(topic, { qos: 1 });
  // a round trip through the broker: the retained message, if any, came before it
  await c.subscribeAsync('offsite/nas/round-trip', { qos: 1 });
  await c.endAsync();
  return got;
}

before(async () => {
  port = await freePort();
  url = `mqtt://127.0.0.1:${port}`;
  const passwd = join(dir, 'passwd');
  const acl = join(dir, 'acl');
  const conf = block('/etc/mosquitto/conf.d/offsite.conf')
    .replace(/^listener 1883$/m, `listener ${port} 127.0.0.1`)
    .replace('/etc/mosquitto/passwd', passwd)
    .replace('/etc/mosquitto/acl', acl);
  assert.match(conf, new RegExp(`^listener ${port} 127\\.0\\.0\\.1$`, 'm'), 'the page listens on 1883');
  writeFileSync(join(dir, 'mosquitto.conf'), `${conf}persistence false\nlog_dest none\n`);
  writeFileSync(acl, block('/etc/mosquitto/acl'));
  writeFileSync(passwd, '');
  for (const [user, password] of Object.entries(PASSWORDS))
    execFileSync('mosquitto_passwd', ['-b', passwd, user, password]);
  // the page's ownership and modes: readable by the mosquitto user (which root's mosquitto reads them as) only
  const uid = Number(execFileSync('id', ['-u', 'mosquitto'], { encoding: 'utf8' }));
  const gid = Number(execFileSync('id', ['-g', 'mosquitto'], { encoding: 'utf8' }));
  for (const f of [passwd, acl]) {
    chownSync(f, uid, gid);
    chmodSync(f, 0o600);
  }
  chmodSync(dir, 0o755);
  broker = spawn(MOSQUITTO, ['-c', join(dir, 'mosquitto.conf')], { stdio: 'ignore' });
  for (let i = 0; ; i++) {
    try {
      await (await client('offsite')).endAsync();
      break;
    } catch (e) {
      if (i > 200 || broker.exitCode !== null) throw new Error(`mosquitto did not start: ${e}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
});

after(async () => {
  if (broker.exitCode === null) {
    const gone = new Promise((r) => broker.once('exit', r));
    broker.kill('SIGTERM');
    await gone;
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('docs/security.md: closing the broker', () => {
  it('refuses a client without a login, and a wrong password', async () => {
    assert.equal(userInfo().uid, 0, 'the tests run as root (the broker drops to the mosquitto user)');
    await assert.rejects(client(), /Not authorized|Connection refused/);
    await assert.rejects(
      mqtt.connectAsync(url, { reconnectPeriod: 0, username: 'homeassistant', password: 'guess' }),
      /Not authorized|Connection refused|Bad username or password/,
    );
  });

  it("lets offsite, configured as the page says, publish its status and Home Assistant's discovery", async () => {
    const yaml = parse(block('/etc/offsite/config.yaml').replace(/^# .*\n/, '')) as {
      mqtt: Record<string, unknown>;
    };
    assert.deepEqual(yaml.mqtt, {
      url: 'mqtt://127.0.0.1:1883',
      username: 'offsite',
      password_file: '/etc/offsite/mqtt.password',
    });
    const secret = join(dir, 'mqtt.password');
    writeFileSync(secret, `${PASSWORDS.offsite}\n`, { mode: 0o600 });
    const config = parseConfig({
      node_id: 'nas',
      state_dir: join(dir, 'state'),
      source: { path: join(dir, 'source') },
      drives: [{ name: 'alpha', directory: join(dir, 'alpha') }],
      mqtt: { ...yaml.mqtt, url, password_file: secret },
    });
    const log = memoryLog();
    const idle = statusSchema.parse({
      state: 'idle',
      drive: null,
      step: null,
      progress: null,
      bytes: null,
      eta: null,
      message: 'ready',
      updated: new Date().toISOString(),
    });
    assert.equal(await publishOnce(config.mqtt, [statusMessage(config, idle)], { log, role: 'test' }), true);
    const link = new MqttLink({ config: config.mqtt, log, role: 'test' });
    link.start();
    assert.equal(await publishDiscovery(link, config, log), true, log.lines.join('\n'));
    await link.stop();
    assert.equal(log.count('refused'), 0, log.lines.join('\n'));

    // Home Assistant reads both
    assert.match(await retainedAs('homeassistant', topicsFor(config).status), /"message":"ready"/);
    assert.match(await retainedAs('homeassistant', discoveryTopicFor(config)), /"cmps"/);
  });

  it('lets Home Assistant announce itself to offsite, and fake nothing of what offsite says', {
    timeout: 20_000,
  }, async () => {
    const status = 'offsite/nas/status';
    const nas = await client('offsite');
    const birth = new Promise<string>((resolve) => nas.on('message', (_t, p) => resolve(p.toString())));
    await nas.subscribeAsync(homeAssistantStatusTopic('homeassistant'), { qos: 1 });
    await nas.publishAsync(status, '{"state":"failed"}', { qos: 1, retain: true });

    const ha = await client('homeassistant');
    await ha.publishAsync(homeAssistantStatusTopic('homeassistant'), 'online', { qos: 1 });
    assert.equal(await birth, 'online');
    // mosquitto drops a publish the ACL denies (a v3.1.1 client is not told)
    await ha.publishAsync(status, '{"state":"success"}', { qos: 1, retain: true });
    await ha.endAsync();
    await nas.endAsync();
    assert.equal(await retainedAs('offsite', status), '{"state":"failed"}');
  });

  it('is what offsite doctor calls closed: a client without a login publishes nothing', async () => {
    const config = parseConfig({ node_id: 'nas', source: { path: join(dir, 'source') }, mqtt: { url } });
    assert.equal(await anonymousAccess(config.mqtt!, topics('offsite', 'nas').probe, 3000), 'login refused');
  });
});
