import manifest from '../package.json';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  DEFAULTS,
  chooseInterpreter,
  installCommand,
  needsRestart,
  parseSettings,
  serverSettings,
  splitArgs,
} from '../src/settings';

const from = (values: Record<string, unknown>) => parseSettings((key) => values[key]);

test('missing settings take their defaults with no problems', () => {
  const { settings, problems } = from({});
  assert.deepEqual(settings, DEFAULTS);
  assert.deepEqual(problems, []);
});

test('valid values are kept', () => {
  const { settings, problems } = from({
    python: ' /opt/py/bin/python ',
    args: ['--n', '3'],
    env: { A: '1' },
    'diagnostics.topN': 3,
    'diagnostics.minMiB': 0.5,
    'diagnostics.minShare': 0.2,
    heat: false,
    installSource: '/src/memlens',
    hideBelowShare: 0.02,
    temporaryAllocationThreshold: 0,
    showChangeSincePreviousRun: true,
  });
  assert.deepEqual(problems, []);
  assert.equal(settings.showChangeSincePreviousRun, true);
  assert.equal(settings.hideBelowShare, 0.02);
  assert.equal(settings.temporaryAllocationThreshold, 0);
  assert.equal(settings.python, '/opt/py/bin/python');
  assert.deepEqual(settings.args, ['--n', '3']);
  assert.deepEqual(settings.env, { A: '1' });
  assert.deepEqual(settings.diagnostics, { topN: 3, minMiB: 0.5, minShare: 0.2 });
  assert.equal(settings.heat, false);
  assert.equal(settings.installSource, '/src/memlens');
});

test('a bad value falls back to its default and is reported once, by name', () => {
  const { settings, problems } = from({
    args: 'not a list',
    'diagnostics.topN': 2.5,
    'diagnostics.minShare': 3,
    env: { A: 1 },
    heat: 'yes',
    hideBelowShare: 1.5,
    temporaryAllocationThreshold: 65,
    showChangeSincePreviousRun: 'on',
  });
  assert.equal(settings.showChangeSincePreviousRun, false);
  assert.deepEqual(settings.args, []);
  assert.equal(settings.diagnostics.topN, 10);
  assert.equal(settings.diagnostics.minShare, 0.01);
  assert.deepEqual(settings.env, {});
  assert.equal(settings.heat, true);
  assert.equal(settings.hideBelowShare, 0.005);
  assert.equal(settings.temporaryAllocationThreshold, 1);
  assert.deepEqual(
    problems.map((p) => p.split(':')[0]),
    [
      'memlens.args',
      'memlens.env',
      'memlens.diagnostics.topN',
      'memlens.diagnostics.minShare',
      'memlens.hideBelowShare',
      'memlens.temporaryAllocationThreshold',
      'memlens.showChangeSincePreviousRun',
      'memlens.heat',
    ],
  );
  assert.match(problems[0], /invalid value "not a list", using \[\]/);
});

test('an empty install source means "memlens"', () => {
  assert.equal(from({ installSource: '  ' }).settings.installSource, 'memlens');
});

test('the server gets its settings without the client-only ones, with the interpreter in use', () => {
  const sent = serverSettings({ ...DEFAULTS, heat: false, installSource: 'x' }, '/usr/bin/python3');
  assert.deepEqual(Object.keys(sent), ['memlens']);
  assert.equal(sent.memlens.python, '/usr/bin/python3');
  assert.ok(!('heat' in sent.memlens));
  assert.ok(!('installSource' in sent.memlens));
  assert.deepEqual(sent.memlens.diagnostics, DEFAULTS.diagnostics);
  assert.equal(sent.memlens.inlayHints, true);
  assert.equal(sent.memlens.hideBelowShare, 0.005);
  assert.equal(sent.memlens.showChangeSincePreviousRun, false);
});

test('interpreter: setting, else the Python extension, else python3', () => {
  assert.deepEqual(chooseInterpreter('/a/python', '/b/python'), { python: '/a/python', source: 'setting' });
  assert.deepEqual(chooseInterpreter('  ', '/b/python'), { python: '/b/python', source: 'python-extension' });
  assert.deepEqual(chooseInterpreter('', undefined), { python: 'python3', source: 'default' });
  assert.deepEqual(chooseInterpreter('', ''), { python: 'python3', source: 'default' });
});

test('only a new interpreter restarts the server', () => {
  assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, python: '/x' }), true);
  assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, heat: false, args: ['a'] }), false);
});

test('the pip command quotes what a shell would split', () => {
  assert.equal(installCommand('/v/bin/python', 'memlens'), '/v/bin/python -m pip install memlens');
  assert.equal(installCommand('/my env/python', 'memlens[dev]'), "'/my env/python' -m pip install 'memlens[dev]'");
  assert.equal(installCommand('C:\\Py 3\\python.exe', 'memlens', true), '& "C:\\Py 3\\python.exe" -m pip install memlens');
});

test('arguments split like a POSIX shell', () => {
  assert.deepEqual(splitArgs(''), []);
  assert.deepEqual(splitArgs('  a  b '), ['a', 'b']);
  assert.deepEqual(splitArgs(`--name 'two words' "x \\"y\\"" z\\ w ''`), ['--name', 'two words', 'x "y"', 'z w', '']);
  assert.throws(() => splitArgs('"open'), /unclosed " quote/);
});

test('every setting package.json declares is read, with its declared default', () => {
  const properties = manifest.contributes.configuration.properties as Record<string, { default: unknown }>;
  const flat = (value: object, prefix = ''): Record<string, unknown> =>
    Object.fromEntries(
      Object.entries(value).flatMap(([key, v]) =>
        key === 'diagnostics' ? Object.entries(flat(v as object, 'diagnostics.')) : [[prefix + key, v]],
      ),
    );
  const declared = Object.fromEntries(Object.entries(properties).map(([key, spec]) => [key.slice('memlens.'.length), spec.default]));
  assert.deepEqual(flat(DEFAULTS), declared);
});
