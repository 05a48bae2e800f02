/** Recorded strings printed to the auditor's terminal: control sequences shown, never obeyed. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsonLine, printableCell, printableText } from '../../src/cli/printable.js';

describe('printable output', () => {
  const hostile = 'ls\x1b]0;pwned\x07\x1b[2J\x1b]52;c;ZXZpbA==\x07\u009b31m';
  it('a table cell shows every control character as \\xHH, C1 included', () => {
    assert.equal(printableCell(hostile), 'ls\\x1b]0;pwned\\x07\\x1b[2J\\x1b]52;c;ZXZpbA==\\x07\\x9b31m');
    assert.equal(printableCell('a\tb\nc'), 'a\\x09b\\x0ac');
  });
  it('text keeps tabs and newlines, and escapes the rest', () => {
    assert.equal(printableText('a\tb\nc\x1b[31m\x7f'), 'a\tb\nc\\x1b[31m\\x7f');
  });
  it('a JSON line escapes DEL and C1 too, and is still the same JSON', () => {
    const line = jsonLine({ text: hostile });
    // eslint-disable-next-line no-control-regex -- looking for control characters
    assert.ok(!/[\u0000-\u001f\u007f-\u009f]/.test(line.slice(0, -1)), line);
    assert.deepEqual(JSON.parse(line), { text: hostile });
  });
});
