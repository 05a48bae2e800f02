/**
 * The numbers of SFTP version 3 (draft-ietf-secsh-filexfer-02) that the gate reads, named as in the
 * draft, and the limits the gate's parser keeps to (docs/FORMAT.md §3.2.2).
 */

/** draft-02 §3: packet types. */
export const PacketType = {
  INIT: 1,
  VERSION: 2,
  OPEN: 3,
  CLOSE: 4,
  READ: 5,
  WRITE: 6,
  LSTAT: 7,
  FSTAT: 8,
  SETSTAT: 9,
  FSETSTAT: 10,
  OPENDIR: 11,
  READDIR: 12,
  REMOVE: 13,
  MKDIR: 14,
  RMDIR: 15,
  REALPATH: 16,
  STAT: 17,
  RENAME: 18,
  READLINK: 19,
  SYMLINK: 20,
  STATUS: 101,
  HANDLE: 102,
  DATA: 103,
  NAME: 104,
  ATTRS: 105,
  EXTENDED: 200,
  EXTENDED_REPLY: 201,
} as const;

/** The only version the gate decodes; OpenSSH speaks it. */
export const SFTP_VERSION = 3;

/** draft-02 §6.3: SSH_FXF_* open flags, in bit order, by the names the log uses. */
export const OPEN_FLAGS: readonly (readonly [bit: number, name: string])[] = [
  [0x01, 'read'],
  [0x02, 'write'],
  [0x04, 'append'],
  [0x08, 'creat'],
  [0x10, 'trunc'],
  [0x20, 'excl'],
];

/** draft-02 §5: SSH_FILEXFER_ATTR_* flags. */
export const AttrFlag = {
  SIZE: 0x00000001,
  UIDGID: 0x00000002,
  PERMISSIONS: 0x00000004,
  ACMODTIME: 0x00000008,
  EXTENDED: 0x80000000,
} as const;

/** draft-02 §7: SSH_FX_* status codes, by the names the log uses (index = code). */
const STATUS_NAMES = [
  'ok',
  'eof',
  'no_such_file',
  'permission_denied',
  'failure',
  'bad_message',
  'no_connection',
  'connection_lost',
  'op_unsupported',
] as const;

export const STATUS_OK = 0;
export const STATUS_EOF = 1;

export function statusName(code: number): string {
  return STATUS_NAMES[code] ?? `code_${code}`;
}

/**
 * The longest packet (the `length` field) the parser accepts: OpenSSH's SFTP_MAX_MSG_LENGTH (256 KiB),
 * which both its client and server enforce, plus 1 KiB. Longer: parsing stops.
 */
export const MAX_PACKET_LENGTH = 256 * 1024 + 1024;

/** draft-02 §6.2: a handle is at most 256 bytes. */
export const MAX_HANDLE_LENGTH = 256;

/** Open handles the parser follows per channel; more: parsing stops. */
export const MAX_HANDLES = 4096;

/** Requests waiting for their reply, per channel; more: parsing stops. */
export const MAX_PENDING = 16384;
