/**
 * The one error type of the cast tools (asciicast, scriptreplay, text, replay): a session whose terminal
 * channel cannot be chosen, or an option that does not fit it. The CLI maps a CastError to exit status 2
 * and prints its message.
 */
export type CastErrorCode =
  /** The session has no channel with a shell or an exec request: nothing to show as a terminal. */
  | 'NO_TERMINAL_CHANNEL'
  /** The session has several terminal channels and no `--channel` was given; the message lists them. */
  | 'CHANNEL_AMBIGUOUS'
  /** `--channel N` names a channel that is not a terminal channel of the session. */
  | 'CHANNEL_NOT_FOUND'
  /** `--at` is past the session's last event, or not a number. */
  | 'START_INVALID';

export class CastError extends Error {
  override readonly name = 'CastError';
  constructor(
    readonly code: CastErrorCode,
    message: string,
  ) {
    super(message);
  }
}
