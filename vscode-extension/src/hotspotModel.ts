// The Hotspots tree as plain data: a "Peak" section of the top lines by peak and a "Leaks" section,
// each line expanding into its stack frames. The view (hotspotsView.ts) only turns nodes into
// TreeItems. Pure: no vscode import.

import { formatBytes, type Frame, type Hotspot, type HotspotsResult } from './protocol';

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
  children: LineNode[];
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
    description: placeText(frame.file || frame.uri, frame.line),
    location: { uri: frame.uri, line: frame.line },
  }));
}

function lineNode(section: 'peak' | 'leaks', hotspot: Hotspot, index: number): LineNode {
  const id = `${section}/${index}:${hotspot.uri}:${hotspot.line}`;
  const place = placeText(hotspot.file || hotspot.uri, hotspot.line);
  const amount =
    section === 'peak'
      ? `${formatBytes(hotspot.peakBytes)} · ${percent(hotspot.share)}`
      : `${formatBytes(hotspot.leakBytes)} leaked`;
  const tooltip = [
    hotspot.label,
    `${hotspot.function || '<module>'} — ${hotspot.file}:${hotspot.line + 1}`,
    `peak ${formatBytes(hotspot.peakBytes)} (${percent(hotspot.share)} of the run's peak)`,
    `allocated ${formatBytes(hotspot.totalBytes)} in ${hotspot.count} allocations`,
    hotspot.leakBytes > 0 ? `leaked ${formatBytes(hotspot.leakBytes)}` : '',
  ]
    .filter(Boolean)
    .join('\n');
  return {
    kind: 'line',
    id,
    label: `${hotspot.function || '<module>'} ${place}`,
    description: amount,
    tooltip,
    location: { uri: hotspot.uri, line: hotspot.line },
    children: frameNodes(id, hotspot.stack ?? []),
  };
}

/** The two top-level sections; empty when there is no profile. */
export function buildHotspotTree(result: HotspotsResult | null | undefined): SectionNode[] {
  if (!result) return [];
  const lines = (result.lines ?? []).map((h, i) => lineNode('peak', h, i));
  const leaks = (result.leaks ?? []).map((h, i) => lineNode('leaks', h, i));
  if (!lines.length && !leaks.length) return [];
  return [
    { kind: 'section', id: 'peak', label: 'Peak memory', description: `${lines.length} lines`, children: lines },
    { kind: 'section', id: 'leaks', label: 'Leaks', description: `${leaks.length} lines`, children: leaks },
  ];
}

export function childrenOf(node: HotspotNode): HotspotNode[] {
  return node.kind === 'frame' ? [] : node.children;
}
