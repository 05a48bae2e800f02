/**
 * One error type for configuration problems. A config is usually wrong in several places at once, so the
 * error carries every issue found, each naming where it is (`targets[2].port`), and the message lists them
 * one per line: an operator fixes them all in one pass instead of one per restart.
 */
export type ConfigErrorCode =
  /** The file could not be read (missing, permissions, a directory). */
  | 'CONFIG_UNREADABLE'
  /** The text is not valid YAML or JSON; issue paths are `file:line:column`. */
  | 'CONFIG_SYNTAX'
  /** The document does not match the schema, or fails a cross-field check (unknown target, duplicates). */
  | 'CONFIG_INVALID'
  /** The document is well formed but names algorithms the policy refuses (FIPS mode, compression). */
  | 'CONFIG_POLICY'
  /**
   * The document is valid, but a key, file or directory it names cannot be used for its role (an EC
   * recipient, a public key as the checkpoint signer, a store that cannot be written): the start-up
   * checks that `config check` and `serve` share (src/cli/startup-checks.ts).
   */
  | 'CONFIG_STARTUP';

export interface ConfigIssue {
  /** Where: `targets[2].port`, `(root)` for the whole document, or `file:line:column` for syntax errors. */
  readonly path: string;
  readonly message: string;
  /** The key reference or file at `path`, when the problem is with what it names (start-up checks). */
  readonly ref?: string;
}

/** One issue as printed: `path: message`, or `path (ref): message`. */
export function formatIssue(issue: ConfigIssue): string {
  return `${issue.path}${issue.ref ? ` (${issue.ref})` : ''}: ${issue.message}`;
}

const HEADLINES: Record<ConfigErrorCode, string> = {
  CONFIG_UNREADABLE: 'cannot read the config',
  CONFIG_SYNTAX: 'the config is not valid YAML or JSON',
  CONFIG_INVALID: 'the config is invalid',
  CONFIG_POLICY: 'the config breaks the algorithm policy',
  CONFIG_STARTUP: 'the gate cannot start with this config',
};

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly code: ConfigErrorCode,
    /** The file name (or another label for in-memory text) the issues refer to. */
    readonly source: string,
    readonly issues: ConfigIssue[],
    options?: { cause?: unknown },
  ) {
    super([`${source}: ${HEADLINES[code]}`, ...issues.map(formatIssue)].join('\n'), options);
  }
}
