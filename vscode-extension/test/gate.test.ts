import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Gate } from '../src/gate';

const elapsed = async (body: () => Promise<void>): Promise<number> => {
  const start = Date.now();
  await body();
  return Date.now() - start;
};

test('an open gate lets waiters through at once', async () => {
  const gate = new Gate();
  assert.ok((await elapsed(() => gate.wait(5_000))) < 100);
});

test('a closed gate holds waiters until it opens', async () => {
  const gate = new Gate();
  gate.close();
  setTimeout(() => gate.open(), 150);
  const waited = await elapsed(() => gate.wait(5_000));
  assert.ok(waited >= 140 && waited < 1_000, `waited ${waited} ms`);
  assert.ok((await elapsed(() => gate.wait(5_000))) < 100); // stays open
});

test('a gate never opened holds waiters for the bound only', async () => {
  const gate = new Gate();
  gate.close();
  const waited = await elapsed(() => gate.wait(200));
  assert.ok(waited >= 190 && waited < 1_000, `waited ${waited} ms`);
});

test('closing again releases whoever waited on the previous closing', async () => {
  const gate = new Gate();
  gate.close();
  const first = elapsed(() => gate.wait(5_000));
  setTimeout(() => gate.close(), 100);
  assert.ok((await first) < 1_000);
});
