// The survey's memory between sweeps, on a fake procfs (symlinks print like ns links do): what is
// reused when nothing changed, and that every change is still seen.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { WatchStatus } from '../../../src/agent/host/mount-watch.js';
import type { AgentState } from '../../../src/agent/repair/state.js';
import { newSurveyMemory, survey, type SurveyReads } from '../../../src/agent/repair/survey.js';
import { ALLOWED_FILES } from '../../../src/config/defaults.js';

const dir = mkdtempSync(join(tmpdir(), 'lxcfs-webhook-survey-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const LIVE = '0:50';
const NEXT = '0:51';
const PID = 100;

/** A procfs with one container namespace, whose init is PID, and lxcfs files at `targets`. */
function fakeProc(
  name: string,
  targets: string[],
): { proc: string; setTargets(targets: string[], dev?: string): void } {
  const proc = join(dir, name);
  const ns = join(proc, String(PID), 'ns');
  mkdirSync(ns, { recursive: true });
  mkdirSync(join(proc, '1', 'ns'), { recursive: true });
  symlinkSync('mnt:[4026531841]', join(proc, '1', 'ns', 'mnt'));
  symlinkSync('mnt:[4026532301]', join(ns, 'mnt'));
  symlinkSync('pid:[4026532302]', join(ns, 'pid'));
  symlinkSync('pid:[4026532302]', join(ns, 'pid_for_children'));
  writeFileSync(
    join(proc, String(PID), 'stat'),
    `${PID} (sleep) S 1 ${PID} ${PID} 0 -1 4194560 ${'0 '.repeat(12)}12345 0 1 0\n`,
  );
  writeFileSync(
    join(proc, String(PID), 'cgroup'),
    '0::/kubepods/podaaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee/cri-containerd-c1.scope\n',
  );
  const setTargets = (files: string[], dev = LIVE) => {
    const lines = [
      '500 400 254:1 / / rw,relatime - ext4 /dev/vda1 rw',
      `501 500 0:22 / /proc rw,nosuid - proc proc rw`,
      ...files.map(
        (f, i) =>
          `${600 + i} 501 ${dev} ${f} ${f} rw,relatime - fuse.lxcfs lxcfs rw,user_id=0,group_id=0`,
      ),
    ];
    writeFileSync(join(proc, String(PID), 'mountinfo'), `${lines.join('\n')}\n`);
  };
  setTargets(targets);
  return { proc, setTargets };
}

const state: AgentState = { knownDevs: [LIVE, NEXT], namespaces: {} };
const quiet = (): SurveyReads => {
  const watch: WatchStatus = { pid: PID, startTime: 12345, confirmed: true, dirty: false };
  return { readAll: false, watch: { status: () => watch, reading: () => undefined } };
};

test('an unchanged namespace keeps its classification; a new live connection is classified again', () => {
  const { proc } = fakeProc('restart', ['/proc/meminfo', '/proc/uptime']);
  const config = { proc, files: ALLOWED_FILES };
  const memory = newSurveyMemory();
  const first = survey(config, { liveDev: LIVE, state }, memory).views;
  assert.deepEqual(
    first.map((v) => v.statuses.map((s) => s.state)),
    [['live', 'live']],
  );
  const again = survey(config, { liveDev: LIVE, state }, memory, quiet());
  assert.equal(again.mountinfoRead, 0);
  assert.equal(again.views[0]!.statuses, first[0]!.statuses, 'reused');
  assert.equal(again.views[0]!.fuseDevs, first[0]!.fuseDevs);
  // lxcfs restarted: no mount changed, yet every target is now on a dead connection
  const restarted = survey(config, { liveDev: NEXT, state }, memory, quiet()).views;
  assert.deepEqual(
    restarted[0]!.statuses.map((s) => s.state),
    ['stale', 'stale'],
  );
  assert.deepEqual(restarted[0]!.ourTargets, ['/proc/meminfo', '/proc/uptime']);
});

test('reading everything: the same lines keep the classification, a changed line is classified again', () => {
  const { proc, setTargets } = fakeProc('fallback', ['/proc/meminfo']);
  const config = { proc, files: ALLOWED_FILES };
  const memory = newSurveyMemory();
  const first = survey(config, { liveDev: LIVE, state }, memory);
  const again = survey(config, { liveDev: LIVE, state }, memory);
  assert.equal(again.mountinfoRead, 1, 'read again');
  assert.equal(again.views[0]!.statuses, first.views[0]!.statuses, 'but not classified again');
  setTargets(['/proc/meminfo'], NEXT);
  assert.deepEqual(
    survey(config, { liveDev: LIVE, state }, memory).views[0]!.statuses.map((s) => s.state),
    ['stale'],
  );
});

test('new memory or new known connections are classified again', () => {
  const { proc, setTargets } = fakeProc('memory', ['/proc/meminfo']);
  const config = { proc, files: ALLOWED_FILES };
  const memory = newSurveyMemory();
  const cgroup = '/kubepods/podaaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee/cri-containerd-c1.scope';
  const remembered: AgentState = {
    ...state,
    namespaces: {
      'mnt:[4026532301]': {
        cgroup,
        targets: { '/proc/uptime': { lxcfsPath: '/proc/uptime', readOnly: true } },
      },
    },
  };
  survey(config, { liveDev: LIVE, state }, memory);
  assert.deepEqual(
    survey(config, { liveDev: LIVE, state: remembered }, memory, quiet()).views[0]!.statuses.map(
      (s) => `${s.target}=${s.state}`,
    ),
    ['/proc/meminfo=live', '/proc/uptime=missing'],
  );
  // a dead connection the agent no longer knows is not ours
  setTargets(['/proc/meminfo'], NEXT);
  survey(config, { liveDev: LIVE, state }, memory);
  assert.deepEqual(
    survey(config, { liveDev: LIVE, state: { ...state, knownDevs: [LIVE] } }, memory, quiet())
      .views,
    [],
  );
});
