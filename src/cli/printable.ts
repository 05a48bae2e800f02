/**
 * Recorded text is hostile input: a command, a path or a login may hold terminal control sequences (a
 * window title, a screen clear, an OSC 52 clipboard write) that must not reach the auditor's own
 * terminal. Tables and text output pass their strings through here; `--json` through `jsonLine`.
 */

/** C0 controls (but tab and newline), DEL and C1 controls (U+0080–U+009F, which some terminals obey). */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
/** The same, with tab and newline: a table cell is one line. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CELL_CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g;

const escape = (c: string): string => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;

/** A table cell: every control character shown as `\xHH`. */
export function printableCell(value: unknown): string {
  return String(value).replace(CELL_CONTROLS, escape);
}

/** Plain-text output (lines kept): control characters other than tab and newline shown as `\xHH`. */
export function printableText(text: string): string {
  return text.replace(CONTROLS, escape);
}

/**
 * One JSON line. JSON.stringify escapes C0 controls but writes DEL and C1 as they are: those are written
 * as `\u00XX` escapes too, so a JSON line printed on a terminal is inert (and still the same JSON).
 */
export function jsonLine(value: unknown): string {
  return `${JSON.stringify(value).replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}\n`;
}
