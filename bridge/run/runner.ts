/**
 * The one place that walks steps (docs/design.md §3): announces each step, stops at the
 * first failure, walks the undos back, and tells the bus how the run ended.
 */
import { randomUUID } from 'node:crypto';
import { errorMessage } from '../error-message.js';
import type { RunEnded, RunEvents } from '../events.js';
import type { Result } from '../protocol.js';
import { asDriveGone } from '../steps/gone.js';
import { type RunContext, type Step, StepError } from '../steps/step.js';
import type { Bus } from './bus.js';

export type RunOutcome = RunEnded;

export function newRunId(now = new Date()): string {
  return `${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${randomUUID().slice(0, 8)}`;
}

/**
 * Walk `steps`. With a `refusal` (the run cannot start, e.g. its lock cannot
 * be written) nothing is done and the run fails at its first step with that
 * reason.
 */
export async function runSteps(
  steps: readonly Step[],
  ctx: RunContext,
  bus: Bus<RunEvents>,
  refusal?: Error,
): Promise<RunOutcome> {
  const { drive, runId } = ctx;
  const startedAt = new Date();
  bus.emit('run:start', { runId, drive: drive.name, time: startedAt });
  const done: Step[] = [];
  let failed: { step: Step; error: unknown; started: boolean } | null = null;

  for (const step of steps) {
    if (refusal) {
      failed = { step, error: refusal, started: false };
      break;
    }
    if (ctx.signal.aborted) {
      failed = {
        step,
        error: new StepError(`cancelled (${errorMessage(ctx.signal.reason)})`),
        started: false,
      };
      break;
    }
    const t0 = Date.now();
    bus.emit('step:start', { runId, drive: drive.name, step: step.name, time: new Date() });
    ctx.log.info(`${step.name}: ${step.title}`);
    try {
      const result = await step.run(ctx);
      done.push(step);
      const ms = Date.now() - t0;
      bus.emit('step:done', { runId, drive: drive.name, step: step.name, time: new Date(), ms });
      // the heading said what was being done; this line says what came of it
      ctx.log.info(`${step.name}: ${result || 'done'} (${(ms / 1000).toFixed(1)} s)`);
    } catch (error) {
      // a pulled drive fails whatever step was running with some low-level error: say what happened
      const why = await asDriveGone(
        ctx,
        step.name,
        error,
        done.map((s) => s.name),
      );
      failed = { step, error: why, started: true };
      break;
    }
  }

  const undoErrors: string[] = [];
  if (failed) {
    ctx.log.error(`${failed.step.name} failed: ${errorMessage(failed.error)}`);
    // the failing step may have half-done its work, so it is undone too
    const toUndo = failed.started ? [...done, failed.step] : done;
    for (const step of toUndo.reverse()) {
      if (!step.undo) continue;
      try {
        await step.undo(ctx);
      } catch (e) {
        const msg = `undo of ${step.name} failed: ${errorMessage(e)}`;
        undoErrors.push(msg);
        ctx.log.error(`${msg}`);
      }
    }
  }

  const warnings = ctx.facts.warnings;
  const result: Result = failed ? 'failed' : warnings.length ? 'warning' : 'success';
  const exitCode = failed ? (failed.error instanceof StepError ? failed.error.exitCode : 1) : 0;
  const outcome: RunOutcome = {
    runId,
    drive: drive.name,
    result,
    step: failed ? failed.step.name : null,
    message: failed
      ? errorMessage(failed.error) + (undoErrors.length ? ` (and: ${undoErrors.join('; ')})` : '')
      : warnings.length
        ? `copied with ${warnings.length} warning(s): ${warnings[0]}`
        : 'copy complete; safe to remove',
    startedAt,
    endedAt: new Date(),
    exitCode,
    warnings,
    bytes: ctx.facts.bytes ?? null,
    freeBytes: ctx.facts.freeBytes ?? null,
    sizeBytes: ctx.facts.sizeBytes ?? null,
    undoErrors,
  };
  bus.emit('run:end', outcome);
  return outcome;
}
