/**
 * The real `offsite-led` process for the LED benchmarks: compiled to
 * JavaScript as installed (not under tsx, which costs memory of its own),
 * started on a temporary sysfs LED against a broker, and measured from /proc.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { topics } from '../bridge/protocol.js';
import { recorder } from '../harness/broker.js';
import { ledClassDir, ledFile, status } from '../harness/led-agent.js';

/**
 * Compile the agent the way `npm run build` would, but only its own files, inside
 * the checkout so that its imports (mqtt, zod, yaml) resolve from node_modules.
 */
export function compileAgent(): string {
  const out = join('node_modules', '.cache', 'offsite-led-bench');
  rmSync(out, { recursive: true, force: true });
  const tsc = spawnSync(
    process.execPath,
    [
      'node_modules/typescript/bin/tsc',
      'led-agent/cli.ts',
      // the short-lived child it starts (led-agent/offload.ts): nothing imports it
      'led-agent/helper.ts',
      ...['--outDir', out, '--rootDir', '.', '--module', 'NodeNext', '--moduleResolution', 'NodeNext'],
      ...['--strict', '--target', 'ES2022', '--skipLibCheck', '--esModuleInterop', '--types', 'node'],
    ],
    { encoding: 'utf8' },
  );
  if (tsc.status !== 0) throw new Error(`tsc failed:\n${tsc.stdout}${tsc.stderr}`);
  return join(out, 'led-agent', 'cli.js');
}

export interface AgentProcess {
  child: ChildProcess;
  /** the sysfs LED class directory it drives */
  led: string;
  /** resident set now, MiB */
  rss(): number;
  /** the most it has been resident, MiB (VmHWM) */
  peak(): number;
  /** start the peak afresh from the present resident set */
  resetPeak(): void;
  /** what it has printed so far */
  output(): string;
  /** SIGTERM; its exit code and what it printed */
  stop(): Promise<{ code: number | null; stdout: string }>;
}

function procStatus(pid: number, field: string): number {
  const kb = Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  return +(kb / 1024).toFixed(1);
}

/** Start the compiled agent (node_id nas, drives alpha, beta, gamma) and wait until it is online. */
export async function startAgentProcess(opts: {
  cli: string;
  brokerUrl: string;
  base: string;
  nodeFlags: string[];
}): Promise<AgentProcess> {
  const led = ledClassDir({ multiIndex: 'red green blue' });
  const dir = mkdtempSync(join(tmpdir(), 'offsite-led-bench-'));
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    `node_id: nas
state_dir: ${join(dir, 'state')}
source: { path: /srv/backup }
drives:
${['alpha', 'beta', 'gamma'].map((d) => `  - { name: ${d}, directory: /tmp/offsite-${d} }`).join('\n')}
mqtt: { url: '${opts.brokerUrl}', base_topic: ${opts.base} }
led: { driver: sysfs, path: '${led}', brightness: 10 }
`,
  );
  const t = topics(opts.base, 'nas');
  const watch = await recorder(opts.brokerUrl, [t.ledAvailability]);
  const child = spawn(process.execPath, [...opts.nodeFlags, opts.cli, '--config', config], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // never leave the agent behind when the benchmark fails half-way
  process.on('exit', () => child.kill('SIGKILL'));
  let stdout = '';
  child.stdout?.on('data', (d) => {
    stdout += d;
  });
  await watch.waitFor((m) => m.payload === 'online', 30_000);
  await watch.close();
  const pid = child.pid!;
  return {
    child,
    led,
    rss: () => procStatus(pid, 'VmRSS'),
    peak: () => procStatus(pid, 'VmHWM'),
    // "5" resets the peak RSS (proc(5), clear_refs); needs the same user as the process, or root
    output: () => stdout,
    resetPeak: () => writeFileSync(`/proc/${pid}/clear_refs`, '5'),
    async stop() {
      child.kill('SIGTERM');
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      rmSync(dir, { recursive: true, force: true });
      return { code, stdout };
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Two changes of light, each seen on the LED (failed, then running): once they
 * show, the agent has read everything published before them.
 */
export async function caughtUp(publisher: MqttClient, agent: AgentProcess, base: string): Promise<void> {
  const t = topics(base, 'nas');
  for (const [state, rgb] of [
    ['failed', '255 0 0'],
    ['running', '51 194 128'],
  ] as const) {
    await publisher.publishAsync(t.status, status(state), { qos: 1 });
    for (let i = 0; ledFile(agent.led, 'multi_intensity') !== rgb; i++) {
      if (i > 12_000)
        throw new Error(
          `the agent did not show ${state} within 120 s; it said:\n${agent.output().split('\n').slice(-10).join('\n')}`,
        );
      await sleep(10);
    }
  }
}
