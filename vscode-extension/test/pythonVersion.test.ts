import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { VERSION_SCRIPT, parseVersion, unsupportedVersion } from '../src/pythonVersion';

test('the version script prints major.minor, which parses', () => {
  const printed = execFileSync('python3', ['-c', VERSION_SCRIPT], { encoding: 'utf8' });
  assert.match(printed, /^\d+\.\d+\n$/);
  const version = parseVersion(printed);
  assert.ok(version);
  assert.equal(version.join('.'), printed.trim());
});

test('anything but major.minor does not parse', () => {
  assert.deepEqual(parseVersion(' 3.12\n'), [3, 12]);
  assert.equal(parseVersion('Python 3.12.1'), undefined);
  assert.equal(parseVersion('(3, 12)'), undefined);
  assert.equal(parseVersion(''), undefined);
});

test('3.10 to 3.13 are supported, the versions around them are not', () => {
  for (const minor of [10, 11, 12, 13]) assert.equal(unsupportedVersion('/py', [3, minor]), undefined);
  assert.equal(
    unsupportedVersion('/usr/bin/python3.9', [3, 9]),
    'memlens: the interpreter /usr/bin/python3.9 is Python 3.9; memlens supports Python 3.10 to 3.13.' +
      ' Set memlens.python to a supported interpreter.',
  );
  assert.match(unsupportedVersion('/opt/py314/bin/python', [3, 14]) ?? '', /is Python 3\.14; memlens supports/);
  assert.match(unsupportedVersion('python2', [2, 7]) ?? '', /is Python 2\.7;/);
  assert.match(unsupportedVersion('python4', [4, 0]) ?? '', /is Python 4\.0;/);
});
