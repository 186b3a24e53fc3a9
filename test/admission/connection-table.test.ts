// The connection table's decisions, without sockets: who gives up a connection for a new one, and when a
// new one is refused. connections-guard.test.ts checks the same rules on real TLS connections.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConnectionTable } from '../../src/admission/connection-table.js';

/** A table of named connections, each opened from a peer named in the name (`a1` is from `a`). */
function table(maxConnections: number, maxPerPeer: number) {
  const t = new ConnectionTable<string>({ maxConnections, maxPerPeer });
  const open = (...names: string[]) =>
    names
      .map((name) => {
        const admission = t.admit(name, name.replace(/\d+$/, ''));
        assert.ok(admission.admitted, `${name} admitted`);
        return admission.evictions.map((e) => `${e.victim} (${e.reason}, ${e.phase})`);
      })
      .flat();
  return { t, open };
}

describe('connection table', () => {
  it('admits every connection below both limits, evicting nothing', () => {
    const { t, open } = table(10, 5);
    assert.deepEqual(open('a1', 'a2', 'b1', 'c1'), []);
    assert.equal(t.size, 4);
  });

  it('at the bound, takes from the peer holding the most: its least recently used idle connection first', () => {
    const { t, open } = table(6, 6);
    open('a1', 'a2', 'a3', 'a4', 'b1', 'b2');
    for (const name of ['a3', 'a1', 'a2', 'b1']) t.setPhase(name, 'idle'); // a3 idle longest
    assert.deepEqual(open('c1'), ['a3 (max-connections, idle)']);
    t.setPhase('a3', 'idle'); // gone: no effect
    assert.deepEqual(open('c2'), ['a1 (max-connections, idle)']);
    assert.equal(t.size, 6);
  });

  it('takes the oldest unfinished connection when the heaviest peer has no idle one, and never an answering one', () => {
    const { open, t } = table(5, 5);
    open('a1', 'a2', 'a3', 'b1', 'b2');
    t.setPhase('a1', 'answering');
    assert.deepEqual(open('c1'), ['a2 (max-connections, unfinished)']);
    // a now holds a1 (answering) and a3: as heavy as b, and both have something to give up.
    t.setPhase('b1', 'idle');
    assert.deepEqual(
      open('c2'),
      ['a3 (max-connections, unfinished)'],
      'a is still the first of the heaviest',
    );
  });

  it('a keep-alive connection that starts its next request counts as the newest unfinished one', () => {
    const { t, open } = table(4, 4);
    open('a1', 'a2', 'a3', 'a4');
    t.setPhase('a1', 'idle');
    t.setPhase('a1', 'unfinished'); // its next request is arriving: now younger than a2, a3 and a4
    assert.deepEqual(open('b1'), ['a2 (max-connections, unfinished)']);
  });

  it('a peer at its share gives up one of its own for a new connection, and others are untouched', () => {
    const { t, open } = table(100, 3);
    open('a1', 'a2', 'a3', 'b1');
    t.setPhase('a2', 'idle');
    assert.deepEqual(open('a4'), ['a2 (peer-limit, idle)']);
    assert.deepEqual(open('a5'), ['a1 (peer-limit, unfinished)']);
    assert.equal(t.countOf('a'), 3);
    assert.equal(t.countOf('b'), 1);
  });

  it("refuses a new connection only when nothing can make room: the peer's, or the whole table's, are all answering", () => {
    const { t, open } = table(4, 2);
    open('a1', 'a2', 'b1', 'b2');
    for (const name of ['a1', 'a2']) t.setPhase(name, 'answering');
    assert.deepEqual(t.admit('a3', 'a'), { admitted: false, reason: 'peer-limit' });
    for (const name of ['b1', 'b2']) t.setPhase(name, 'answering');
    assert.deepEqual(t.admit('c1', 'c'), { admitted: false, reason: 'max-connections' });
    t.remove('b2');
    assert.deepEqual(open('c1'), []);
    assert.equal(t.size, 4);
  });

  it('forgets closed connections and empty peers', () => {
    const { t, open } = table(3, 3);
    open('a1', 'a2', 'b1');
    for (const name of ['a1', 'a2', 'b1']) t.remove(name);
    assert.equal(t.size, 0);
    assert.equal(t.countOf('a'), 0);
    t.remove('a1'); // twice: no effect
    assert.deepEqual(open('c1', 'c2', 'c3'), []);
  });

  it('a client with one connection keeps it while an attacker from many addresses floods the table', () => {
    const { t, open } = table(64, 8);
    open('api1');
    for (let round = 0; round < 50; round++) {
      for (let address = 0; address < 16; address++)
        open(`x${String.fromCharCode(97 + address)}${round}`);
    }
    assert.equal(
      t.phaseOf('api1'),
      'unfinished',
      'the oldest unfinished connection of all, and still held',
    );
    assert.equal(t.size, 64);
  });
});
