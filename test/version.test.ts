import { describe, expect, it } from 'vitest';
import { checksum } from '../src/core/checksum.ts';
import { parseDuration } from '../src/core/directives.ts';
import { compareVersions, parseVersion, requireVersion, versionKey } from '../src/core/version.ts';
import { defined, thrown } from './support/defined.ts';

describe('versions', () => {
  it.each([
    ['1.10', '1.9', 1],
    ['1_2', '1.2', 0],
    ['1.0', '1', 0],
    ['01', '1', 0],
    ['2', '10', -1],
    ['2026.01.05', '2026.1.4', 1],
    ['1.2.3', '1.2', 1],
    ['99999999999999999999', '99999999999999999998', 1],
  ])('%s compared with %s is %i', (a, b, expected) => {
    expect(Math.sign(compareVersions(defined(parseVersion(a), `version ${a}`), defined(parseVersion(b), `version ${b}`)))).toBe(expected);
  });

  it('gives equal versions one key', () => {
    expect(versionKey(defined(parseVersion('1.0.0'), 'version 1.0.0'))).toBe(versionKey(defined(parseVersion('1'), 'version 1')));
  });

  it.each(['', 'a', '1..2', '1.', '-1', '1.2a'])('refuses %j', (text) => {
    expect(parseVersion(text)).toBeUndefined();
    expect(thrown(() => requireVersion(text, '--target'), `requireVersion(${JSON.stringify(text)})`)).toMatchObject({ code: 'BAD_OPTION' });
  });
});

describe('checksum', () => {
  it('ignores line endings and a byte-order mark', () => {
    const unix = 'create table a (id int);\nselect 1;\n';
    expect(checksum(unix.replace(/\n/g, '\r\n'))).toBe(checksum(unix));
    expect(checksum(`\uFEFF${unix}`)).toBe(checksum(unix));
    expect(checksum(unix)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('changes when the content changes', () => {
    expect(checksum('select 1;')).not.toBe(checksum('select 2;'));
  });
});

describe('durations', () => {
  it.each([
    ['5s', 5000],
    ['500ms', 500],
    ['0', 0],
    ['2min', 120000],
    ['1.5s', 1500],
  ])('%s is %i ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });
  it.each(['5', 'soon', '-1s', ''])('refuses %j', (text) => expect(parseDuration(text)).toBeUndefined());
});
