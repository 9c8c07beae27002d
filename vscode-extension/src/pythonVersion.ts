// Which Python versions the memlens server and tracker run on, and the decision about one
// interpreter's version. Pure: no vscode import (unit-tested under plain node).

/** The supported range, inclusive: the native tracker knows the frame layout of these only. */
export const SUPPORTED = { oldest: [3, 10], newest: [3, 13] } as const;

/** Prints "major.minor"; runs on any Python, 2.7 included. */
export const VERSION_SCRIPT = 'import sys; print("%d.%d" % sys.version_info[:2])';

/** "3.12" from the script's output, or undefined when it printed something else. */
export function parseVersion(output: string): [number, number] | undefined {
  const match = /^(\d+)\.(\d+)$/.exec(output.trim());
  return match ? [Number(match[1]), Number(match[2])] : undefined;
}

/** One line for an interpreter outside the supported range; undefined when it is supported. */
export function unsupportedVersion(python: string, version: [number, number]): string | undefined {
  const [major, minor] = version;
  const [oldMajor, oldMinor] = SUPPORTED.oldest;
  const [newMajor, newMinor] = SUPPORTED.newest;
  const below = major < oldMajor || (major === oldMajor && minor < oldMinor);
  const above = major > newMajor || (major === newMajor && minor > newMinor);
  if (!below && !above) return undefined;
  return (
    `memlens: the interpreter ${python} is Python ${major}.${minor}; memlens supports Python ` +
    `${oldMajor}.${oldMinor} to ${newMajor}.${newMinor}. Set memlens.python to a supported interpreter.`
  );
}
