/**
 * Why the SFTP parser stopped reading a channel, with a closed set of codes. These errors never reach
 * the user or end a session: the observer turns the first one into a `parser-stopped` SFTP_OP record
 * (docs/FORMAT.md §3.2.2) and the bytes go on flowing. Messages describe the stream, never its content.
 */
export type SftpStreamErrorCode =
  /** A packet's length field is 0 or beyond MAX_PACKET_LENGTH. */
  | 'PACKET_TOO_LONG'
  /** A packet does not decode as its type says. */
  | 'MALFORMED_PACKET'
  /** The first packet from the client is not INIT. */
  | 'NOT_SFTP'
  /** The negotiated version is not 3. */
  | 'UNSUPPORTED_VERSION'
  /** Too many open handles or unanswered requests to follow. */
  | 'TOO_MUCH_STATE'
  /** A bug in the parser, caught so that the session goes on. */
  | 'INTERNAL';

export class SftpStreamError extends Error {
  override readonly name = 'SftpStreamError';
  constructor(
    readonly code: SftpStreamErrorCode,
    message: string,
  ) {
    super(message);
  }
}
