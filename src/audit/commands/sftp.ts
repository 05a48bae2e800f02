/**
 * SFTP_OP request records as commands (docs/AUDITOR.md §6.3): the operations that change or read a file
 * or a directory, named as a user of `sftp` would say them. Lookups (stat, realpath, readlink, close,
 * fstat, init) are not commands; they stay in the records.
 */
import type { JsonObject } from '../../seal/format/json.js';

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** True for flags that make an OPEN a write (upload, truncate, append). */
function opensForWrite(flags: unknown): boolean {
  return (
    Array.isArray(flags) &&
    flags.some((f) => f === 'write' || f === 'append' || f === 'creat' || f === 'trunc')
  );
}

/** The attribute changes of a SETSTAT-like request, as chmod/chown/touch words. */
function attrChanges(attrs: unknown, path: string): string[] {
  if (typeof attrs !== 'object' || attrs === null) return [];
  const a = attrs as Record<string, unknown>;
  const out: string[] = [];
  if (a.permissions !== undefined) out.push(`chmod ${String(a.permissions)} ${path}`);
  if (a.uid !== undefined || a.gid !== undefined)
    out.push(`chown ${String(a.uid ?? '')}:${String(a.gid ?? '')} ${path}`);
  if (a.size !== undefined) out.push(`truncate ${String(a.size)} ${path}`);
  if (a.mtime !== undefined || a.atime !== undefined) out.push(`touch ${path}`);
  return out;
}

/**
 * The command words of one SFTP_OP record, or [] when it is not a command (a reply, a lookup). A path
 * that was not UTF-8 is shown as recorded (lossy); its `path_b64` stays the authority in the record.
 */
export function sftpCommands(op: JsonObject): string[] {
  if (op.result !== undefined) return []; // a reply: the request was the command
  const name = str(op.op) ?? '';
  const path = str(op.path) ?? '';
  const newPath = str(op.new_path) ?? '';
  switch (name) {
    case 'open':
      return [`${opensForWrite(op.flags) ? 'put' : 'get'} ${path}`];
    case 'opendir':
      return [`ls ${path}`];
    case 'remove':
      return [`rm ${path}`];
    case 'mkdir':
      return [`mkdir ${path}`];
    case 'rmdir':
      return [`rmdir ${path}`];
    case 'rename':
    case 'posix-rename@openssh.com':
      return [`rename ${path} ${newPath}`];
    case 'symlink':
      return [`ln -s ${str(op.target) ?? ''} ${path}`];
    case 'hardlink@openssh.com':
      return [`ln ${path} ${newPath}`];
    case 'setstat':
    case 'fsetstat':
    case 'lsetstat@openssh.com':
      return attrChanges(op.attrs, path);
    case 'copy-data':
      return [`cp ${path} ${newPath}`];
    case 'init':
    case 'close':
    case 'stat':
    case 'lstat':
    case 'fstat':
    case 'realpath':
    case 'readlink':
    case 'expand-path@openssh.com':
    case 'home-directory':
    case 'statvfs@openssh.com':
    case 'fstatvfs@openssh.com':
    case 'limits@openssh.com':
    case 'fsync@openssh.com':
    case 'users-groups-by-id@openssh.com':
    case 'channel-closed':
    case 'parser-stopped':
      return [];
    default:
      // An extension or an unknown packet type: name it, so that nothing the client asked for is hidden.
      return [path ? `${name} ${path}` : name];
  }
}
