// Who may hold the webhook port's connections: the decisions, apart from sockets (connections.ts
// applies them). The bound on connections must never hand the port to whoever fills it first, so a
// new connection is always taken unless nothing can make room for it:
//   - a peer address already holding its share (--max-connections-per-peer) gives up one of its own;
//   - at the bound (--max-connections), the peer holding the most connections gives up one.
// The one given up is the least recently used idle keep-alive connection (its client loses nothing:
// HTTP clients, the API server's included, retry a request on a connection that closed while idle),
// else the oldest connection still in its TLS handshake or still sending its request. A connection
// whose request is being answered is never taken; when a peer, or the whole table, has only such
// connections, the new one is refused.
//
// Insertion-ordered Sets keep every choice O(1) but the search for the heaviest peer, which is a scan
// of the peers and runs only at the bound.

/** What a connection is doing, as far as eviction is concerned. */
export type ConnectionPhase =
  /** Between requests on a keep-alive connection: the cheapest to close. */
  | 'idle'
  /** In its TLS handshake, or waiting for or receiving a request: a slow client looks like this. */
  | 'unfinished'
  /** Its request is complete and being answered: never evicted. */
  | 'answering';

export type EvictablePhase = Exclude<ConnectionPhase, 'answering'>;

/** Why a connection was evicted or refused: the per-peer share or the bound on the whole port. */
export type LimitReason = 'peer-limit' | 'max-connections';

export interface ConnectionLimits {
  maxConnections: number;
  maxPerPeer: number;
}

export interface Eviction<T> {
  victim: T;
  reason: LimitReason;
  phase: EvictablePhase;
}

export type Admission<T> =
  { admitted: true; evictions: Array<Eviction<T>> } | { admitted: false; reason: LimitReason };

interface PeerConnections<T> {
  address: string;
  count: number;
  idle: Set<T>;
  unfinished: Set<T>;
}

interface Entry<T> {
  peer: PeerConnections<T>;
  phase: ConnectionPhase;
}

export class ConnectionTable<T> {
  private readonly entries = new Map<T, Entry<T>>();
  private readonly peers = new Map<string, PeerConnections<T>>();

  constructor(private readonly limits: ConnectionLimits) {}

  get size(): number {
    return this.entries.size;
  }

  /** Connections held by `peer` now. */
  countOf(peer: string): number {
    return this.peers.get(peer)?.count ?? 0;
  }

  /**
   * A new connection from `peer`: either admitted (as 'unfinished'), with the connections to close to
   * make room for it (already removed from the table), or refused.
   */
  admit(handle: T, peer: string): Admission<T> {
    const evictions: Array<Eviction<T>> = [];
    const own = this.peers.get(peer);
    if (own && own.count >= this.limits.maxPerPeer) {
      const eviction = this.evictFrom(own, 'peer-limit');
      if (!eviction) return { admitted: false, reason: 'peer-limit' };
      evictions.push(eviction);
    }
    if (this.entries.size >= this.limits.maxConnections) {
      const heaviest = this.heaviestEvictablePeer();
      const eviction = heaviest && this.evictFrom(heaviest, 'max-connections');
      if (!eviction) return { admitted: false, reason: 'max-connections' };
      evictions.push(eviction);
    }
    const connections = this.peers.get(peer) ?? this.addPeer(peer);
    connections.count++;
    const entry: Entry<T> = { peer: connections, phase: 'unfinished' };
    this.entries.set(handle, entry);
    connections.unfinished.add(handle);
    return { admitted: true, evictions };
  }

  /**
   * Moves a connection to `phase`. Entering 'idle' or 'unfinished' puts it last in that phase's order
   * (most recently used, newest), also when it was there already: an idle connection reused, or a
   * keep-alive connection starting its next request, is as young as a new one.
   */
  setPhase(handle: T, phase: ConnectionPhase): void {
    const entry = this.entries.get(handle);
    if (!entry) return;
    this.leavePhase(handle, entry);
    entry.phase = phase;
    if (phase !== 'answering') entry.peer[phase].add(handle);
  }

  phaseOf(handle: T): ConnectionPhase | undefined {
    return this.entries.get(handle)?.phase;
  }

  /** A closed connection: no longer counted. */
  remove(handle: T): void {
    const entry = this.entries.get(handle);
    if (!entry) return;
    this.leavePhase(handle, entry);
    this.entries.delete(handle);
    this.dropFromPeer(entry.peer);
  }

  private leavePhase(handle: T, entry: Entry<T>): void {
    if (entry.phase !== 'answering') entry.peer[entry.phase].delete(handle);
  }

  private addPeer(peer: string): PeerConnections<T> {
    const connections: PeerConnections<T> = {
      address: peer,
      count: 0,
      idle: new Set(),
      unfinished: new Set(),
    };
    this.peers.set(peer, connections);
    return connections;
  }

  private dropFromPeer(connections: PeerConnections<T>): void {
    connections.count--;
    if (connections.count === 0) this.peers.delete(connections.address);
  }

  /** The peer with the most connections among those that have one to give up. */
  private heaviestEvictablePeer(): PeerConnections<T> | undefined {
    let heaviest: PeerConnections<T> | undefined;
    for (const connections of this.peers.values()) {
      if (connections.idle.size + connections.unfinished.size === 0) continue;
      if (!heaviest || connections.count > heaviest.count) heaviest = connections;
    }
    return heaviest;
  }

  /** Removes and returns the peer's least recently used idle connection, else its oldest unfinished one. */
  private evictFrom(connections: PeerConnections<T>, reason: LimitReason): Eviction<T> | undefined {
    for (const phase of ['idle', 'unfinished'] as const) {
      const first = connections[phase].values().next();
      if (first.done) continue;
      const victim = first.value;
      this.remove(victim);
      return { victim, reason, phase };
    }
    return undefined;
  }
}
