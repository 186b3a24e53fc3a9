// One bound on the request bodies held in memory at once, all connections together: without it, 40
// clients each sending an unfinished 8 MB body took the webhook to 398 MB, past its 256Mi limit.
//
// A body takes its declared Content-Length from the budget before any of it is read (a chunked body,
// which declares none, takes each chunk as it arrives) and gives it back when it has been answered or
// abandoned. A body that does not fit is refused at once, unread: see request.ts for the answer.
export class BodyBudget {
  private taken = 0;

  constructor(readonly limitBytes: number) {}

  /** Bytes held by bodies in flight right now. */
  get inUseBytes(): number {
    return this.taken;
  }

  /** Takes `bytes` if they fit under the limit; false (and nothing taken) if they do not. */
  tryTake(bytes: number): boolean {
    if (this.taken + bytes > this.limitBytes) return false;
    this.taken += bytes;
    return true;
  }

  giveBack(bytes: number): void {
    this.taken -= bytes;
  }
}
