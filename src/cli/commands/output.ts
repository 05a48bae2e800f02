/**
 * Standard output for the auditor commands that may print a lot: chunked writes that wait for the pipe
 * to drain, and a quiet stop when the reader goes away (`… | head`), as a command killed by SIGPIPE.
 */
const CHUNK = 64 * 1024;

export class OutputWriter {
  #parts: string[] = [];
  #size = 0;
  #closed = false;

  constructor(private readonly stream: NodeJS.WriteStream = process.stdout) {
    stream.on('error', () => {
      this.#closed = true;
    });
  }

  /** False once the reader has gone: the caller may stop producing. */
  get open(): boolean {
    return !this.#closed;
  }

  async write(text: string): Promise<void> {
    this.#parts.push(text);
    this.#size += text.length;
    if (this.#size >= CHUNK) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.#closed || this.#size === 0) return;
    const chunk = this.#parts.join('');
    this.#parts = [];
    this.#size = 0;
    if (!this.stream.write(chunk)) {
      await new Promise<void>((done) => {
        const finish = (): void => {
          this.stream.off('drain', finish);
          this.stream.off('error', finish);
          done();
        };
        this.stream.once('drain', finish);
        this.stream.once('error', finish);
      });
    }
  }

  async close(): Promise<void> {
    await this.flush();
  }
}
