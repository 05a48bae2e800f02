/**
 * The command list of a session (docs/AUDITOR.md §6): derived from the records, never the authority.
 * The raw DATA_IN / DATA_OUT bytes stay the truth; a Command says where it starts in them.
 */

/** How a command was derived. */
export type Derivation =
  /** From an EXEC record: exactly what the client asked the target to run. */
  | 'exec'
  /** From an interactive channel: the line on the terminal screen when the user's Enter was echoed. */
  | 'terminal'
  /** From an SFTP_OP request record (`put /etc/x`, `rename a b`). */
  | 'sftp';

export interface Command {
  /** Session id, hex. */
  readonly session: string;
  /** The session channel the command ran on. */
  readonly channel: number;
  /** Leaf index of the record where the command starts (the EXEC, the DATA_IN with the Enter, the SFTP_OP). */
  readonly index: number;
  /** Microseconds since the epoch, of that record. */
  readonly timeUs: bigint;
  readonly derivation: Derivation;
  /** The command as text (for `exec`, the EXEC record's `command`, as the gate recorded it). */
  readonly text: string;
  /**
   * `terminal` only: false when the screen and the input disagree (input that was never echoed, a line
   * read off a screen the reconstructor could not follow). `exec` and `sftp` are always confident.
   */
  readonly confident: boolean;
  /** Why `confident` is false, in a few words. */
  readonly note?: string;
}
