// Work that must never overlap itself. Two ways to ask for a run while one is going on:
// - run(): "one run at a time, then one more", where a request means "something changed, look again"
//   (a sweep, a certificate re-read): requests during a run coalesce into a single further run, which
//   every one of them waits for;
// - runUnlessBusy(): a periodic check (a probe, reads inside containers) whose next tick will come
//   anyway: a request during a run is dropped.
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

  /** Runs `task` unless a run is going on; resolves with undefined when it did not run. */
  runUnlessBusy(task: () => Promise<T>): Promise<T | undefined> {
    return this.running ? Promise.resolve(undefined) : this.run(task);
  }
}
