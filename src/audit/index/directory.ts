/**
 * The index directory on the auditor's machine (docs/AUDITOR.md §9.3): where it lives, its permissions
 * (0700 directories, 0600 files: it holds plaintext derived from sealed sessions), its lock, and its
 * files (format.ts). Writes are crash-safe: commands.jsonl is appended (and trusted only up to the length
 * INDEX.json records), the other files are replaced by rename, and INDEX.json is renamed last.
 */
import fs from 'node:fs';
import { homedir } from 'node:os';
import { join, relative, resolve, isAbsolute } from 'node:path';
import { AuditError } from '../errors.js';
import type { SessionSummary } from '../sessions.js';
import { INDEX_FILES, INDEX_FORMAT, type CommandLine, type IndexMeta } from './format.js';

/** `$XDG_CACHE_HOME/sealgate/index`, or `~/.cache/sealgate/index` (XDG Base Directory defaults). */
export function defaultIndexRoot(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  const cache = xdg && isAbsolute(xdg) ? xdg : join(env.HOME || homedir(), '.cache');
  return join(cache, 'sealgate', 'index');
}

/** A file-name-safe form of an origin: `gate.example.com/sealgate` → `gate.example.com_sealgate`. */
function safeName(origin: string): string {
  return origin.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100) || '_';
}

/** The directory of one log's indexes: `<root>/<origin>-<first 16 hex of leaf 0's hash>`. */
export function logIndexDir(root: string, origin: string, firstLeaf: string): string {
  return join(root, `${safeName(origin)}-${firstLeaf.slice(0, 16)}`);
}

/** One recipient key's index of that log: `<log dir>/key-<first 16 hex of the key id>`. */
export function keyIndexDir(root: string, origin: string, firstLeaf: string, keyId: string): string {
  return join(logIndexDir(root, origin, firstLeaf), `key-${keyId.slice(0, 16)}`);
}

/** Refuses an index inside the source (a gate's store must never hold derived plaintext). */
export function assertOutside(indexDir: string, sourceDir: string): void {
  const rel = relative(resolve(sourceDir), resolve(indexDir));
  if (rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))) {
    throw new AuditError(
      'INDEX_UNUSABLE',
      `the index ${indexDir} would be inside the source ${sourceDir}; give --index a directory elsewhere`,
    );
  }
}

/** mkdir -p with 0700 for every directory it creates, and 0700 forced on the last one. */
function makePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.statSync(dir);
  if ((st.mode & 0o077) !== 0) fs.chmodSync(dir, 0o700);
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes `text` to `dir/name` through a 0600 temp file, fsynced, renamed into place. */
function replaceFile(dir: string, name: string, text: string): void {
  const tmp = join(dir, `.${name}.tmp`);
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.fchmodSync(fd, 0o600);
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, join(dir, name));
}

const jsonLines = (rows: readonly unknown[]): string => rows.map((r) => `${JSON.stringify(r)}\n`).join('');

function isMeta(v: unknown): v is IndexMeta {
  const m = v as Partial<IndexMeta> | null;
  return (
    typeof m === 'object' &&
    m !== null &&
    m.format === INDEX_FORMAT &&
    typeof m.origin === 'string' &&
    typeof m.first_leaf === 'string' &&
    typeof m.key_id === 'string' &&
    Number.isSafeInteger(m.size) &&
    typeof m.anchor === 'string' &&
    Array.isArray(m.tail) &&
    typeof m.last_leaf === 'string' &&
    Array.isArray(m.roots) &&
    Number.isSafeInteger(m.resume_from) &&
    Number.isSafeInteger(m.commands_bytes)
  );
}

function* parseLines<T>(text: string): Generator<T> {
  let at = 0;
  while (at < text.length) {
    let end = text.indexOf('\n', at);
    if (end < 0) end = text.length;
    if (end > at) yield JSON.parse(text.slice(at, end)) as T;
    at = end + 1;
  }
}

export class IndexDirectory {
  #locked = false;

  private constructor(readonly dir: string) {}

  /** Opens (creating it, 0700) the index directory. A directory holding other files is refused. */
  static open(dir: string): IndexDirectory {
    try {
      makePrivateDir(dir);
    } catch (err) {
      throw new AuditError(
        'INDEX_UNUSABLE',
        `cannot create the index directory ${dir} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      );
    }
    const ours = new Set<string>(Object.values(INDEX_FILES));
    const foreign = fs
      .readdirSync(dir)
      .filter((n) => !ours.has(n) && !(n.startsWith('.') && n.endsWith('.tmp')));
    if (foreign.length > 0) {
      throw new AuditError(
        'INDEX_UNUSABLE',
        `${dir} holds files that are not an index's (${foreign.slice(0, 3).join(', ')}); give --index an empty or index directory`,
      );
    }
    return new IndexDirectory(dir);
  }

  /** Takes index.lock; false when another live process holds it (the caller then runs without the index). */
  lock(): boolean {
    const path = join(this.dir, INDEX_FILES.lock);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = fs.openSync(path, 'wx', 0o600);
        fs.writeSync(fd, JSON.stringify({ pid: process.pid }));
        fs.closeSync(fd);
        this.#locked = true;
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      let pid = 0;
      try {
        pid = Number((JSON.parse(fs.readFileSync(path, 'utf8')) as { pid?: unknown }).pid) || 0;
      } catch {
        // A lock torn by a crash: stale.
      }
      if (pid > 0 && pid !== process.pid && alive(pid)) return false;
      fs.rmSync(path, { force: true });
    }
    return false;
  }

  unlock(): void {
    if (!this.#locked) return;
    this.#locked = false;
    fs.rmSync(join(this.dir, INDEX_FILES.lock), { force: true });
  }

  /** INDEX.json, or undefined when there is none or it is not an index of this format. */
  readMeta(): IndexMeta | undefined {
    try {
      const v: unknown = JSON.parse(fs.readFileSync(join(this.dir, INDEX_FILES.meta), 'utf8'));
      return isMeta(v) ? v : undefined;
    } catch {
      return undefined;
    }
  }

  readSessions(): SessionSummary[] {
    const text = fs.readFileSync(join(this.dir, INDEX_FILES.sessions), 'utf8');
    return [...parseLines<SessionSummary>(text)];
  }

  /**
   * The open sessions' commands file, read now: call it under the lock, because an update replaces it
   * (and moves lines from it to commands.jsonl beyond the length an older INDEX.json records).
   */
  readOpenCommands(): string {
    return fs.readFileSync(join(this.dir, INDEX_FILES.openCommands), 'utf8');
  }

  /**
   * Every command: the done sessions' (up to the length INDEX.json records), then the open ones' (as
   * read under the lock by readOpenCommands).
   */
  *commands(meta: IndexMeta, openCommands: string): Generator<CommandLine> {
    const fd = fs.openSync(join(this.dir, INDEX_FILES.commands), 'r');
    let done: Buffer;
    try {
      done = Buffer.allocUnsafe(meta.commands_bytes);
      let got = 0;
      while (got < done.length) {
        const n = fs.readSync(fd, done, got, done.length - got, got);
        if (n === 0) throw new Error(`${INDEX_FILES.commands} is shorter than INDEX.json says`);
        got += n;
      }
    } finally {
      fs.closeSync(fd);
    }
    yield* parseLines<CommandLine>(done.toString('utf8'));
    yield* parseLines<CommandLine>(openCommands);
  }

  /**
   * Writes an update: `appendCommands` after the first `fromBytes` bytes of commands.jsonl (0: a new
   * file), then sessions and open commands, then `meta` (with the new length) last.
   */
  write(
    meta: Omit<IndexMeta, 'commands_bytes'>,
    sessions: readonly SessionSummary[],
    appendCommands: readonly CommandLine[],
    fromBytes: number,
    openCommands: readonly CommandLine[],
  ): IndexMeta {
    const path = join(this.dir, INDEX_FILES.commands);
    const fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_CREAT, 0o600);
    let bytes = fromBytes;
    try {
      fs.fchmodSync(fd, 0o600);
      fs.ftruncateSync(fd, fromBytes);
      const text = Buffer.from(jsonLines(appendCommands), 'utf8');
      let put = 0;
      while (put < text.length) put += fs.writeSync(fd, text, put, text.length - put, fromBytes + put);
      bytes += text.length;
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    replaceFile(this.dir, INDEX_FILES.sessions, jsonLines(sessions));
    replaceFile(this.dir, INDEX_FILES.openCommands, jsonLines(openCommands));
    const full: IndexMeta = { ...meta, commands_bytes: bytes };
    replaceFile(this.dir, INDEX_FILES.meta, `${JSON.stringify(full)}\n`);
    fsyncDir(this.dir);
    return full;
  }

  /** Removes the index files (the directory stays, empty, for the rebuild that follows). */
  clear(): void {
    for (const name of [
      INDEX_FILES.meta,
      INDEX_FILES.sessions,
      INDEX_FILES.commands,
      INDEX_FILES.openCommands,
    ]) {
      fs.rmSync(join(this.dir, name), { force: true });
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * `sealgate index delete`: removes an index directory tree (a log's, or the whole root). Refuses a
 * path that holds anything but index directories, so a wrong argument cannot delete other files.
 */
export function deleteIndexTree(dir: string): boolean {
  if (!fs.existsSync(dir)) return false;
  const ours = new Set<string>(Object.values(INDEX_FILES));
  const check = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) check(join(d, e.name));
      else if (!ours.has(e.name) && !(e.name.startsWith('.') && e.name.endsWith('.tmp'))) {
        throw new AuditError(
          'INDEX_UNUSABLE',
          `${join(d, e.name)} is not an index file; nothing was deleted`,
        );
      }
    }
  };
  check(dir);
  fs.rmSync(dir, { recursive: true, force: true });
  return true;
}
