/**
 * The LED state machine, pure: from the latest valid status and drive payloads
 * of every followed node, which light to show. No broker, no timers, no driver,
 * so every rule here is tested without any of them.
 */
import type { LedConfig } from '../bridge/config.js';
import type { DriveState, Status } from '../bridge/protocol.js';

export const PATTERNS = ['steady', 'blink', 'pulse', 'off'] as const;
export type Pattern = (typeof PATTERNS)[number];

/** What the light says, most urgent first; `off` means "nothing known" (or no broker). */
export const LIGHT_STATES = ['failed', 'running', 'open', 'overdue', 'success', 'idle', 'off'] as const;
export type LightState = (typeof LIGHT_STATES)[number];

export interface Light {
  state: LightState;
  /** `#rrggbb` */
  color: string;
  pattern: Pattern;
  /** which node and drive decided it, for the log; not part of what is shown */
  because: string;
}

/** What one followed node has told us so far (its retained messages, then updates). */
export interface NodeView {
  status?: Status;
  drives: Map<string, DriveState>;
}

export const OFF: Light = { state: 'off', color: '#000000', pattern: 'off', because: 'nothing known' };

/**
 * One node's state. The run state wins while something is running or failed;
 * then a drive opened by `offsite open` (it is not safe to remove, whatever
 * else went well); otherwise the rotation reminder (docs/design.md §7: every
 * drive overdue) outranks the last success, so a green light never hides that
 * no copy is recent.
 */
export function nodeState(view: NodeView): { state: Exclude<LightState, 'off'>; because: string } | null {
  // an idle or open status says nothing of the runs: the light keeps the last finished one's
  const said = view.status?.state;
  const status = said === 'idle' || said === 'open' ? (lastRun(view) ?? view.status) : view.status;
  const running = status?.drive ? `${status.drive} ${status.state}` : status?.state;
  if (status?.state === 'failed')
    return { state: 'failed', because: `${running}${status.step ? ` at ${status.step}` : ''}` };
  if (status?.state === 'running')
    return { state: 'running', because: `${running}${status.step ? ` (${status.step})` : ''}` };
  const drives = [...view.drives.values()];
  const open = drives.filter((d) => d.open).map((d) => d.name);
  if (said === 'open' && view.status?.drive && !open.includes(view.status.drive))
    open.push(view.status.drive);
  if (open.length) return { state: 'open', because: `${open.join(', ')} open` };
  if (drives.length > 0 && drives.every((d) => d.overdue))
    return { state: 'overdue', because: `every drive overdue (${drives.map((d) => d.name).join(', ')})` };
  if (status?.state === 'success') return { state: 'success', because: running ?? 'success' };
  if (status?.state === 'idle' || drives.length > 0) return { state: 'idle', because: 'idle' };
  return null;
}

/**
 * An `idle` status changes nothing on the light (the bridge publishes one when
 * a run found its drive not plugged in: nothing happened). What was shown
 * before is the last finished run, which the retained drive states keep even
 * across a restart of the agent: the drive that ran last, and how that went.
 */
function lastRun(view: NodeView): Pick<Status, 'state' | 'drive' | 'step'> | null {
  let last: DriveState | null = null;
  for (const d of view.drives.values())
    if (
      d.last_run &&
      d.last_result &&
      (!last?.last_run || Date.parse(d.last_run) > Date.parse(last.last_run))
    )
      last = d;
  if (!last) return null;
  return { state: last.last_result === 'failed' ? 'failed' : 'success', drive: last.name, step: null };
}

/** The light for all followed nodes: the most urgent node wins (failed > running > open > overdue > success > idle). */
export function arbitrate(nodes: ReadonlyMap<string, NodeView>, styles: LedConfig['states']): Light {
  let best: { node: string; state: Exclude<LightState, 'off'>; because: string } | null = null;
  for (const [node, view] of nodes) {
    const s = nodeState(view);
    if (s && (!best || LIGHT_STATES.indexOf(s.state) < LIGHT_STATES.indexOf(best.state)))
      best = { node, ...s };
  }
  if (!best) return OFF;
  const style = styles[best.state];
  return {
    state: best.state,
    color: style.color,
    pattern: style.pattern,
    // the step name is free text from the network, and the reason reaches logs and terminals
    because: `${best.node}: ${best.because}`.replace(/[\x00-\x1f\x7f-\x9f]/g, '?'),
  };
}

/** Same light on the LED (the reason may differ: a new progress figure does not redraw). */
export function sameLight(a: Light, b: Light): boolean {
  return a.state === b.state && a.color.toLowerCase() === b.color.toLowerCase() && a.pattern === b.pattern;
}
