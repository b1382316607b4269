/**
 * A RunContext for step tests: a real Bus, a silent logger that says the
 * drive's name first, as a run's does (its tail() still records), empty facts,
 * and collectors for progress and warnings.
 */
import { type Config, parseConfig } from '../../bridge/config.js';
import type { RunEvents, SyncProgress } from '../../bridge/events.js';
import { childLogger, type Logger, silentLogger } from '../../bridge/log.js';
import { Bus } from '../../bridge/run/bus.js';
import { newRunId } from '../../bridge/run/runner.js';
import type { RunContext } from '../../bridge/steps/step.js';

export interface TestRun {
  ctx: RunContext;
  /** the bus runSteps announces the run on */
  bus: Bus<RunEvents>;
  config: Config;
  progress: { p: SyncProgress; at: number }[];
  warnings: { message: string; files: string[] }[];
  log: Logger;
  abort: AbortController;
}

/**
 * `raw` is config YAML-as-object (validated by the real schema); the first
 * drive is the one run unless `drive` names another. `onProgress` lets a test
 * act in the middle of a copy (delete a file, cancel the run).
 */
export function testRun(
  raw: Record<string, unknown>,
  opts: { drive?: string; runId?: string; onProgress?(p: SyncProgress): void; target?: string } = {},
): TestRun {
  const config = parseConfig(raw);
  const drive = opts.drive ? config.drives.find((d) => d.name === opts.drive)! : config.drives[0]!;
  const abort = new AbortController();
  const log = childLogger(silentLogger(), drive.name);
  const progress: TestRun['progress'] = [];
  const warnings: TestRun['warnings'] = [];
  const ctx: RunContext = {
    config,
    drive,
    runId: opts.runId ?? newRunId(),
    log,
    signal: abort.signal,
    facts: {
      warnings: [],
      target: opts.target ?? (drive.kind === 'directory' ? drive.directory : drive.mountPoint),
    },
    progress(p) {
      progress.push({ p, at: performance.now() });
      opts.onProgress?.(p);
    },
    warn(message, files = []) {
      ctx.facts.warnings.push(message);
      warnings.push({ message, files });
    },
  };
  return { ctx, bus: new Bus<RunEvents>(), config, progress, warnings, log, abort };
}
