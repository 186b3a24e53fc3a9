// "One run at a time, then one more": for work that must never overlap itself and where a request made
// during a run means "something changed, look again" (a sweep, a certificate re-read). Requests during a
// run coalesce into a single further run, which every one of them waits for.
export class CoalescingRunner<T> {
  private running: Promise<T> | undefined;
  private queued: Promise<T> | undefined;

  /** Runs `task` now, or once after the current run; a request while one is queued joins that one. */
  run(task: () => Promise<T>): Promise<T> {
    if (!this.running) {
      this.running = task().finally(() => (this.running = undefined));
      return this.running;
    }
    this.queued ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.run(task);
      });
    return this.queued;
  }
}
