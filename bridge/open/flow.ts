/**
 * `offsite open` and `offsite close`, made of the run's own steps
 * (bridge/steps/index.ts): open is identify, unlock, mount read-only; close
 * is unmount, close, power-off. One runner walks them, with its undo walk:
 * an open that fails half-way leaves nothing mounted or unlocked. Neither is
 * a run: no ledger entry, no mail, no `started` event; what they publish is
 * the drive's `open` flag and the status `open`/`idle` (publish.ts).
 *
 * Both take the drive's lock (the one a run holds) for as long as they work:
 * an open waits for no run, and a run that comes while a drive is open finds
 * its record and refuses before it starts (bridge/run/run-drive.ts); a second
 * open refuses it at identify.
 */
import type { Config, Drive } from '../config.js';
import { errorMessage } from '../error-message.js';
import type { RunEnded, RunEvents } from '../events.js';
import { EXIT } from '../exit.js';
import { Ledger } from '../ledger.js';
import { describeBusy, type HeldLock, tryLock } from '../lockfile.js';
import { childLogger, type Logger } from '../log.js';
import { mountAt, realOrSelf } from '../mounts.js';
import {
  describeOpen,
  newOpenId,
  type OpenRecord,
  openState,
  removeOpenRecord,
  writeOpenRecord,
} from '../open-record.js';
import { isPresent } from '../presence.js';
import { processStart } from '../processes.js';
import { currentCopy, layout } from '../rsync/snapshots.js';
import { Bus } from '../run/bus.js';
import { absentMessage, driveLockFile } from '../run/run-drive.js';
import { newRunId, runSteps } from '../run/runner.js';
import { closeStepsFor, openStepsFor } from '../steps/index.js';
import type { RunContext, RunFacts, Step } from '../steps/step.js';
import { clearDrive } from '../steps/teardown.js';
import { localTime, SAFE_TO_REMOVE } from '../words.js';
import { damagedHeaderHint } from './header.js';
import { describeUsers, usersOf } from './usage.js';

export interface FlowDeps {
  log: Logger;
  /** aborts what is under way (SIGINT, SIGTERM) */
  signal?: AbortSignal;
}

export interface Outcome {
  exitCode: number;
  lines: string[];
  /** the drive was opened or closed (what MQTT is then told) */
  changed?: boolean;
}

/** The drive as the steps see it: mounted at `at` rather than its mount point. */
function placedAt(drive: Drive, at: string | undefined): Drive {
  return at && drive.kind !== 'directory' ? { ...drive, mountPoint: at } : drive;
}

/** Walk `steps` with the runner (and its undo walk), outside any run. */
async function walk(
  config: Config,
  drive: Drive,
  steps: readonly Step[],
  facts: Partial<RunFacts>,
  deps: FlowDeps,
): Promise<{ ended: RunEnded; ctx: RunContext }> {
  const log = childLogger(deps.log, drive.name);
  const ac = new AbortController();
  deps.signal?.addEventListener('abort', () => ac.abort(deps.signal?.reason), { once: true });
  const ctx: RunContext = {
    config,
    drive,
    runId: newRunId(),
    log,
    signal: ac.signal,
    facts: { warnings: [], ...facts },
    progress() {},
    warn(message) {
      ctx.facts.warnings.push(message);
      log.warn(message);
    },
  };
  return { ended: await runSteps(steps, ctx, new Bus<RunEvents>()), ctx };
}

/** The drive's lock, or the outcome of not getting it. */
function lockDrive(config: Config, drive: Drive, what: string): HeldLock | Outcome {
  let taken: ReturnType<typeof tryLock>;
  try {
    taken = tryLock(driveLockFile(config.state_dir, drive.name), `offsite ${what} ${drive.name}`);
  } catch (e) {
    return { exitCode: EXIT.failed, lines: [`${drive.name}: ${errorMessage(e)}`] };
  }
  if (taken.lock) return taken.lock;
  return {
    exitCode: EXIT.tempfail,
    lines: [
      `a run of drive "${drive.name}" is in progress (${describeBusy(taken.busy)}): nothing was done; try again once it has finished`,
    ],
  };
}

/** "current -> snapshots/<id>: the copy of run <id>, made 2026-11-28 15:04", and the like. */
export function describeCurrent(config: Config, target: string): string {
  const l = layout(target);
  const copy = currentCopy(l);
  switch (copy.kind) {
    case 'snapshot': {
      const run = new Ledger(config.state_dir).history(200).find((h) => h.run_id === copy.runId);
      const when = run ? `made ${localTime(run.ended)}` : `started ${localTime(runIdTime(copy.runId))}`;
      return `${l.current} -> snapshots/${copy.runId}: the copy of run ${copy.runId}, ${when}`;
    }
    case 'directory':
      return `${l.current} is a plain directory: a copy from before offsite kept snapshots`;
    case 'none':
      return `there is no ${l.current}: no copy was completed on this drive${copy.interrupted ? ' (one was interrupted: snapshots/.partial)' : ''}`;
    case 'unexpected':
      return `${l.current} is ${copy.what}: not what offsite keeps there, so not followed`;
  }
}

/** A run id starts with the time the run started, e.g. 20261128T140405Z-1a2b3c4d. */
function runIdTime(id: string): string | null {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-/.exec(id);
  return m ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z` : null;
}

export interface OpenOptions {
  /** mount here rather than at the drive's mount point */
  at?: string;
  /** close by itself after this long without use */
  idleSeconds?: number;
  /** starts what closes it when idle; returns its pid */
  startWatcher?: (record: OpenRecord) => number | null;
}

export async function openDrive(
  config: Config,
  drive: Drive,
  opts: OpenOptions,
  deps: FlowDeps,
): Promise<Outcome> {
  const headerHint = drive.kind === 'luks' ? [damagedHeaderHint(config.state_dir, drive.name)] : [];
  // a LUKS header overwritten takes the UUID with it: the drive then looks absent
  if (!(await isPresent(drive)))
    return { exitCode: EXIT.tempfail, lines: [absentMessage(drive), ...headerHint] };
  const lock = lockDrive(config, drive, 'open');
  if ('exitCode' in lock) return lock;
  try {
    const placed = placedAt(drive, opts.at);
    const { ended, ctx } = await walk(config, placed, openStepsFor(drive), {}, deps);
    if (ended.result === 'failed') {
      // the runner said why; the undo walk left nothing mounted or unlocked
      const lines = [`${drive.name} was not opened (${ended.step} failed, above)`];
      const unreadable =
        ended.step === 'unlock' || (ended.step === 'identify' && /not a LUKS container/.test(ended.message));
      return { exitCode: ended.exitCode, lines: unreadable ? [...lines, ...headerHint] : lines };
    }
    const target = ctx.facts.target;
    if (!target) throw new Error(`${drive.name}: the open steps left no target`);
    const record: OpenRecord = {
      drive: drive.name,
      id: newOpenId(),
      opened: new Date().toISOString(),
      at: target,
      device: ctx.facts.device ?? null,
      mapper: ctx.facts.mapperDevice ?? null,
      mounted: drive.kind === 'directory' ? null : (mountAt(target)?.majMin ?? null),
      idle_seconds: opts.idleSeconds ?? null,
      watcher: null,
    };
    try {
      writeOpenRecord(config.state_dir, record);
    } catch (e) {
      // unrecorded, a run would not know that it is open: it is not left so
      await walk(
        config,
        placed,
        // it was never open for anyone: not powered off under them
        closeStepsFor(drive).filter((s) => s.name !== 'power-off'),
        ctx.facts,
        deps,
      );
      return { exitCode: EXIT.failed, lines: [`${drive.name}: could not open it: ${errorMessage(e)}`] };
    }
    const watcher = opts.idleSeconds && opts.startWatcher ? opts.startWatcher(record) : null;
    if (watcher)
      writeOpenRecord(config.state_dir, {
        ...record,
        watcher: { pid: watcher, start: processStart(watcher) },
      });
    return { exitCode: EXIT.ok, lines: openedLines(config, drive, record), changed: true };
  } finally {
    lock.release();
  }
}

function openedLines(config: Config, drive: Drive, record: OpenRecord): string[] {
  const lines =
    drive.kind === 'directory'
      ? [
          `${drive.name} is open at ${record.at} (a directory drive: nothing to mount, and not read-only: write nothing there)`,
        ]
      : [`${drive.name} is open, read-only, on ${record.at}`];
  lines.push(
    `current: ${describeCurrent(config, record.at)}`,
    `It is not safe to remove until it is closed: offsite close ${drive.name}`,
  );
  if (record.idle_seconds)
    lines.push(`It closes by itself after ${formatSeconds(record.idle_seconds)} without use.`);
  return lines;
}

/** 1800 -> "30m", 5400 -> "1h30m", 90 -> "1m30s" */
export function formatSeconds(seconds: number): string {
  const parts: string[] = [];
  let left = Math.round(seconds);
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    const n = Math.floor(left / size);
    if (n) parts.push(`${n}${unit}`);
    left -= n * size;
  }
  return parts.join('') || '0s';
}

export interface CloseOptions {
  /** only close the opening with this id (the idle watcher: never a later one) */
  onlyId?: string;
}

export async function closeDrive(
  config: Config,
  drive: Drive,
  opts: CloseOptions,
  deps: FlowDeps,
): Promise<Outcome> {
  const { log } = deps;
  const lock = lockDrive(config, drive, 'close');
  if ('exitCode' in lock) return lock;
  try {
    const open = openState(config.state_dir, drive);
    if (open.is === 'closed' || (opts.onlyId && open.record.id !== opts.onlyId))
      return { exitCode: EXIT.ok, lines: [`drive "${drive.name}" is not open: nothing to do`] };
    const { record } = open;
    stopWatcher(record);
    if (open.is === 'stale') {
      // pulled while open, or unmounted by hand: clear what is left, as the safety net does
      childLogger(log, drive.name).warn(`it was open, but ${open.why}: clearing what is left`);
      const cleared =
        drive.kind === 'directory' ||
        (await clearDrive(drive, childLogger(log, `close ${drive.name}`), [record.at]));
      if (!cleared)
        return {
          exitCode: EXIT.failed,
          lines: [`${drive.name}: could not clear it (see above); still recorded as open`],
        };
      removeOpenRecord(config.state_dir, drive.name);
      return { exitCode: EXIT.ok, lines: [`${drive.name} is closed`], changed: true };
    }
    const facts = {
      target: record.at,
      device: record.device ?? undefined,
      mapperDevice: record.mapper ?? undefined,
    };
    const { ended } = await walk(config, placedAt(drive, record.at), closeStepsFor(drive), facts, deps);
    if (ended.result === 'failed') {
      const users = ended.step === 'unmount' ? usersOf(realOrSelf(record.at)) : [];
      const busy = users.length ? `; in use by ${describeUsers(users)}` : '';
      return {
        exitCode: EXIT.failed,
        lines: [`${drive.name} is still open (${ended.step} failed, above${busy}): ${describeOpen(record)}`],
      };
    }
    removeOpenRecord(config.state_dir, drive.name);
    const nothing = drive.kind === 'directory' ? ' (a directory drive: nothing to unmount or power off)' : '';
    return {
      exitCode: EXIT.ok,
      lines: [`${drive.name} is closed${nothing}: ${SAFE_TO_REMOVE}`],
      changed: true,
    };
  } finally {
    lock.release();
  }
}

/** The idle watcher of this opening has nothing left to watch (not when it is the one closing). */
function stopWatcher(record: OpenRecord): void {
  const w = record.watcher;
  if (!w || w.pid === process.pid || processStart(w.pid) !== w.start) return;
  try {
    process.kill(w.pid, 'SIGTERM');
  } catch {}
}
