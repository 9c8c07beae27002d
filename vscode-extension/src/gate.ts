// A gate that waiters pass once it is opened, or after a bound. Pure: no vscode import.

export class Gate {
  private opened: Promise<void> = Promise.resolve();
  private release: () => void = () => undefined;

  /** From now on, wait() waits for the next open(). */
  close(): void {
    this.release(); // whoever waits on the previous closing is not left behind
    this.opened = new Promise((resolve) => (this.release = resolve));
  }

  open(): void {
    this.release();
  }

  /** Resolves when the gate is open, or after `boundMs` at the latest. */
  async wait(boundMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, boundMs)));
    await Promise.race([this.opened, bound]);
    clearTimeout(timer);
  }
}
