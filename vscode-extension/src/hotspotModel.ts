// The Hotspots tree as plain data: a "Peak" section of the top lines by peak and a "Leaks" section,
// each line expanding into its stack frames. Lines too small to matter are left out by the rule the
// inline numbers follow (memlens.hideBelowShare), and each section says how many. The view
// (hotspotsView.ts) only turns nodes into TreeItems. Pure: no vscode import.

import type { Frame, Hotspot, HotspotsResult } from './protocol';

export interface Location {
  uri: string;
  /** 0-based */
  line: number;
}

export interface SectionNode {
  kind: 'section';
  id: string;
  label: string;
  description: string;
  tooltip: string;
  children: LineNode[];
}

/** What decides which lines are too small to list: the same rule as the hints and lenses. */
export interface Visibility {
  /** memlens.hideBelowShare (0–1): lines under it of the run's peak and of its total are hidden. */
  hideBelowShare: number;
  /** The run's peak and total allocated bytes (the summary's); unknown: nothing is hidden. */
  peakBytes?: number;
  totalBytes?: number;
}

/** Under the share of the run's peak AND of its total (the server's rule for hints and lenses). */
export function isQuiet(hotspot: Hotspot, visibility: Visibility): boolean {
  const { hideBelowShare: share, peakBytes, totalBytes } = visibility;
  if (peakBytes === undefined || totalBytes === undefined) return false;
  return hotspot.peakBytes < share * peakBytes && hotspot.totalBytes < share * totalBytes;
}

export interface LineNode {
  kind: 'line';
  id: string;
  label: string;
  description: string;
  tooltip: string;
  location: Location;
  children: FrameNode[];
}

export interface FrameNode {
  kind: 'frame';
  id: string;
  label: string;
  description: string;
  location: Location;
}

export type HotspotNode = SectionNode | LineNode | FrameNode;

function baseName(file: string): string {
  const parts = file.split(/[\\/]/);
  return parts[parts.length - 1] || file;
}

/** "alloc.py:12" with a 1-based line, as people read it. */
export function placeText(file: string, line: number): string {
  return `${baseName(file)}:${line + 1}`;
}

function percent(share: number): string {
  return `${(Math.max(0, share) * 100).toFixed(share < 0.1 ? 1 : 0)}%`;
}

function frameNodes(parentId: string, stack: readonly Frame[]): FrameNode[] {
  return stack.map((frame, index) => ({
    kind: 'frame',
    id: `${parentId}/${index}`,
    label: frame.function || '<module>',
    description: placeText(frame.file || (frame.uri ?? ''), frame.line),
    location: { uri: frame.uri ?? '', line: frame.line }, // '': not a file (<frozen ...>)
  }));
}

function lineNode(section: 'peak' | 'leaks', hotspot: Hotspot, index: number): LineNode {
  const id = `${section}/${index}:${hotspot.uri}:${hotspot.line}`;
  const place = placeText(hotspot.file || (hotspot.uri ?? ''), hotspot.line);
  const amount =
    section === 'peak'
      ? `${hotspot.peakText} · ${percent(hotspot.share)}`
      : `${hotspot.leakText} leaked`;
  const tooltip = [
    hotspot.label,
    `${hotspot.function || '<module>'} — ${hotspot.file}:${hotspot.line + 1}`,
    `peak ${hotspot.peakText} (${percent(hotspot.share)} of the run's peak)`,
    `allocated ${hotspot.totalText} in ${hotspot.count} allocations`,
    hotspot.leakBytes > 0 ? `leaked ${hotspot.leakText}` : '',
  ]
    .filter(Boolean)
    .join('\n');
  return {
    kind: 'line',
    id,
    label: `${hotspot.function || '<module>'} ${place}`,
    description: amount,
    tooltip,
    location: { uri: hotspot.uri ?? '', line: hotspot.line },
    children: frameNodes(id, hotspot.stack ?? []),
  };
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function sectionNode(
  id: 'peak' | 'leaks',
  label: string,
  hotspots: readonly Hotspot[],
  visibility: Visibility,
): SectionNode {
  const shown = hotspots.filter((h) => !isQuiet(h, visibility));
  const hidden = hotspots.length - shown.length;
  const under = `under ${+(visibility.hideBelowShare * 100).toFixed(3)} % of the run's peak and of its total`;
  return {
    kind: 'section',
    id,
    label,
    description: plural(shown.length, 'line') + (hidden ? ` · ${hidden} hidden` : ''),
    tooltip: `${hidden ? plural(hidden, 'line') : 'No line'} ${under} hidden here (memlens.hideBelowShare)`,
    children: shown.map((h, i) => lineNode(id, h, i)),
  };
}

/** The two top-level sections; empty when there is no profile. */
export function buildHotspotTree(
  result: HotspotsResult | null | undefined,
  visibility: Visibility = { hideBelowShare: 0 },
): SectionNode[] {
  if (!result) return [];
  const lines = result.lines ?? [];
  const leaks = result.leaks ?? [];
  if (!lines.length && !leaks.length) return [];
  return [sectionNode('peak', 'Peak memory', lines, visibility), sectionNode('leaks', 'Leaks', leaks, visibility)];
}

export function childrenOf(node: HotspotNode): HotspotNode[] {
  return node.kind === 'frame' ? [] : node.children;
}
