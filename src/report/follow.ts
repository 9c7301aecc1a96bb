// Following a growing JSONL file (a run's metrics.jsonl) from a byte offset: each complete new
// line is handed on once, a half-written last line waits for its newline. fs.watch on the
// folder says when to look (it sees the file replaced, which a watch on the file would not),
// and a poll looks anyway every pollMs (watching is unreliable on network and some container
// filesystems). A file that shrinks, or is replaced by another (a resumed run cuts its log back
// and writes it anew, atomically), is a reset: the follower says so and reads it from the start.
import { closeSync, existsSync, openSync, readSync, statSync, watch } from "node:fs";
import type { FSWatcher } from "node:fs";
import { basename, dirname } from "node:path";

export interface FollowOptions {
  /** Byte offset to start from, at a line boundary (default 0). */
  from?: number;
  /** Look at the file at least this often, in ms (default 1000). */
  pollMs?: number;
  /** Each new complete line (without its newline) and the offset just after it. */
  onLine: (line: string, offset: number) => void;
  /** The file was truncated or replaced; lines follow again from offset 0. */
  onReset?: () => void;
}

export class JsonlFollower {
  private offset: number;
  private inode: number | undefined;
  private partial = Buffer.alloc(0);
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(readonly path: string, private readonly o: FollowOptions) {
    this.offset = o.from ?? 0;
    this.inode = existsSync(path) ? statSync(path).ino : undefined;
  }

  /** Starts watching, and reads what is already there past the offset. */
  start(): this {
    try {
      const name = basename(this.path);
      this.watcher = watch(dirname(this.path), (_event, file) => {
        if (file === null || file === name) this.check();
      });
      this.watcher.on("error", () => this.watcher?.close()); // the poll goes on
    } catch {
      // no watching here: the poll alone
    }
    this.timer = setInterval(() => this.check(), this.o.pollMs ?? 1000);
    this.timer.unref();
    this.check();
    return this;
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    if (this.timer) clearInterval(this.timer);
  }

  /** Reads whatever is new; called by the watcher, the poll, or a test. */
  check(): void {
    if (this.stopped) return;
    let size: number;
    let inode: number;
    try {
      const st = statSync(this.path);
      size = st.size;
      inode = st.ino;
    } catch {
      return; // not there (yet, or between a removal and its replacement)
    }
    if ((this.inode !== undefined && inode !== this.inode) || size < this.offset) {
      this.offset = 0;
      this.partial = Buffer.alloc(0);
      this.o.onReset?.();
    }
    this.inode = inode;
    if (size <= this.offset) return;
    const chunk = Buffer.alloc(size - this.offset);
    const fd = openSync(this.path, "r");
    let got = 0;
    try {
      while (got < chunk.length) {
        const n = readSync(fd, chunk, got, chunk.length - got, this.offset + got);
        if (n === 0) break;
        got += n;
      }
    } finally {
      closeSync(fd);
    }
    let data = Buffer.concat([this.partial, chunk.subarray(0, got)]);
    let start = this.offset - this.partial.length; // the file offset of data[0]
    this.offset += got;
    for (let nl = data.indexOf(10); nl >= 0; nl = data.indexOf(10)) {
      const line = data.subarray(0, nl).toString("utf8");
      start += nl + 1;
      data = data.subarray(nl + 1);
      if (line.trim()) this.o.onLine(line, start);
    }
    this.partial = Buffer.from(data);
  }
}
