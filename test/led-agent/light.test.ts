import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../bridge/config.js';
import { type DriveState, driveSchema, type Status, statusSchema } from '../../bridge/protocol.js';
import { drive, status } from '../../harness/led-agent.js';
import { arbitrate, type NodeView, nodeState, OFF, sameLight } from '../../led-agent/light.js';

const defaults = parseConfig({ source: { path: '/srv' }, drives: [{ name: 'a', directory: '/tmp/a' }] }).led
  .states;

function view(s?: Status['state'], drives: Array<[string, boolean]> = []): NodeView {
  return {
    ...(s ? { status: statusSchema.parse(JSON.parse(status(s))) } : {}),
    drives: new Map(
      drives.map(([name, overdue]): [string, DriveState] => [
        name,
        driveSchema.parse(JSON.parse(drive(name, overdue))),
      ]),
    ),
  };
}

const one = (v: NodeView) => arbitrate(new Map([['nas', v]]), defaults);

describe('light: which light for which state', () => {
  it('nothing known is off', () => {
    assert.deepEqual(arbitrate(new Map(), defaults), OFF);
    assert.deepEqual(one(view()), OFF);
  });

  it('maps every run state to the documented default colour and pattern', () => {
    const expected = {
      idle: ['#000000', 'off'],
      running: ['#33c280', 'steady'],
      success: ['#00ff00', 'steady'],
      failed: ['#ff0000', 'steady'],
      open: ['#0050ff', 'blink'],
    } as const;
    for (const [state, [color, pattern]] of Object.entries(expected)) {
      const light = one(view(state as Status['state']));
      assert.deepEqual([light.state, light.color, light.pattern], [state, color, pattern], state);
    }
    const overdue = one(view('idle', [['alpha', true]]));
    assert.deepEqual([overdue.state, overdue.color, overdue.pattern], ['overdue', '#ffbf00', 'pulse']);
  });

  it('takes colours and patterns from the led section', () => {
    const led = parseConfig({
      source: { path: '/srv' },
      drives: [{ name: 'a', directory: '/tmp/a' }],
      led: { states: { running: { color: '#0000ff', pattern: 'blink' } } },
    }).led;
    const light = arbitrate(new Map([['nas', view('running')]]), led.states);
    assert.deepEqual([light.color, light.pattern], ['#0000ff', 'blink']);
  });

  it('says overdue only when every drive is overdue', () => {
    assert.equal(
      one(
        view('success', [
          ['alpha', true],
          ['beta', false],
        ]),
      ).state,
      'success',
    );
    assert.equal(
      one(
        view('success', [
          ['alpha', true],
          ['beta', true],
        ]),
      ).state,
      'overdue',
    );
    assert.equal(
      one(
        view(undefined, [
          ['alpha', false],
          ['beta', false],
        ]),
      ).state,
      'idle',
    );
    assert.equal(
      one(
        view(undefined, [
          ['alpha', true],
          ['beta', true],
        ]),
      ).state,
      'overdue',
    );
  });

  it('a run in progress or a failure outranks the overdue reminder', () => {
    assert.equal(
      one(
        view('running', [
          ['alpha', true],
          ['beta', true],
        ]),
      ).state,
      'running',
    );
    assert.equal(
      one(
        view('failed', [
          ['alpha', true],
          ['beta', true],
        ]),
      ).state,
      'failed',
    );
  });

  it('an idle status (a run that found its drive not plugged in) leaves the light of the last finished run', () => {
    const states = (runs: Array<[string, string, 'success' | 'warning' | 'failed']>): NodeView => ({
      status: statusSchema.parse(
        JSON.parse(status('idle', { drive: 'bravo', message: 'drive "bravo" is not plugged in' })),
      ),
      drives: new Map(
        runs.map(([name, lastRun, result]): [string, DriveState] => [
          name,
          driveSchema.parse(JSON.parse(drive(name, false, { last_run: lastRun, last_result: result }))),
        ]),
      ),
    });
    const green = one(
      states([
        ['alpha', '2026-11-28T10:00:00+00:00', 'success'],
        ['bravo', '2026-11-01T10:00:00+00:00', 'failed'],
      ]),
    );
    assert.deepEqual([green.state, green.because], ['success', 'nas: alpha success']);
    const red = one(
      states([
        ['alpha', '2026-11-28T10:00:00+00:00', 'failed'],
        ['bravo', '2026-11-01T10:00:00+00:00', 'success'],
      ]),
    );
    assert.deepEqual([red.state, red.because], ['failed', 'nas: alpha failed']);
    assert.equal(one(states([['alpha', '2026-11-28T10:00:00+00:00', 'warning']])).state, 'success');
    // no drive has run yet: nothing to keep
    const none = view('idle', []);
    assert.equal(one(none).state, 'idle');
  });

  it('a drive opened by offsite open is never green: open outranks success and the reminder, not a failure or a run', () => {
    const opened = (
      s: Status['state'] | undefined,
      open: Array<[string, boolean]>,
      overdue = false,
    ): NodeView => ({
      ...(s ? { status: statusSchema.parse(JSON.parse(status(s))) } : {}),
      drives: new Map(
        open.map(([name, isOpen]): [string, DriveState] => [
          name,
          driveSchema.parse(JSON.parse(drive(name, overdue, { open: isOpen }))),
        ]),
      ),
    });
    // the status says open (alpha was just opened): not green, whatever the drives' last runs were
    const justOpened = one(opened('open', [['alpha', true]]));
    assert.deepEqual([justOpened.state, justOpened.color, justOpened.pattern], ['open', '#0050ff', 'blink']);
    assert.equal(justOpened.because, 'nas: alpha open');
    // bravo's run succeeded since, and the status says success: alpha is still open
    assert.equal(
      one(
        opened('success', [
          ['alpha', true],
          ['bravo', false],
        ]),
      ).state,
      'open',
    );
    assert.equal(one(opened('idle', [['alpha', true]], true)).state, 'open');
    assert.equal(one(opened(undefined, [['alpha', true]])).state, 'open');
    // a run in progress or a failure still says so
    assert.equal(one(opened('running', [['alpha', true]])).state, 'running');
    assert.equal(one(opened('failed', [['alpha', true]])).state, 'failed');
    // closed again (the status idle): the last run's light
    assert.equal(one(opened('idle', [['alpha', false]])).state, 'success');
    // an open status keeps a failed last run red
    const failedBefore: NodeView = {
      status: statusSchema.parse(JSON.parse(status('open', { drive: 'alpha' }))),
      drives: new Map([
        [
          'alpha',
          driveSchema.parse(JSON.parse(drive('alpha', false, { last_result: 'failed', open: true }))),
        ],
      ]),
    };
    assert.equal(one(failedBefore).state, 'failed');
  });

  it('across nodes: failed > running > open > overdue > success > idle', () => {
    const views: Record<string, NodeView> = {
      failed: view('failed'),
      running: view('running'),
      open: view('open'),
      overdue: view('idle', [['alpha', true]]),
      success: view('success'),
      idle: view('idle'),
    };
    const order = ['failed', 'running', 'open', 'overdue', 'success', 'idle'];
    for (let i = 0; i < order.length; i++)
      for (let j = 0; j < order.length; j++) {
        const a = order[i]!;
        const b = order[j]!;
        const light = arbitrate(
          new Map([
            ['nas', views[a]!],
            ['pi', views[b]!],
          ]),
          defaults,
        );
        assert.equal(light.state, order[Math.min(i, j)], `${a} + ${b}`);
      }
  });

  it('names the node and drive that decided the light', () => {
    const light = arbitrate(
      new Map([
        ['nas', view('success')],
        ['pi', view('failed')],
      ]),
      defaults,
    );
    assert.match(light.because, /^pi: alpha failed at mount$/);
    assert.equal(nodeState(view())?.state, undefined);
  });

  it('keeps control characters from a step name out of the reason', () => {
    const v = view('failed');
    v.status!.step = 'mount\n\x1b[2J<0>';
    assert.equal(one(v).because, 'nas: alpha failed at mount??[2J<0>');
  });

  it('a new progress figure is the same light', () => {
    const a = one(view('running'));
    const b = { ...a, because: 'nas: alpha running (verify)' };
    assert.ok(sameLight(a, b));
    assert.ok(!sameLight(a, one(view('failed'))));
  });
});
