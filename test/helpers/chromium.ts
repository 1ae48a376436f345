/**
 * A real headless Chromium for the HTML tests (Debian's `chromium`; .ci/run installs it): the
 * DOM after the page's script ran, the page's own marks on <body> (data-rendered: charts drawn
 * with data, data-charts: charts it meant to draw, data-errors: errors thrown, and whatever else
 * a page marks), and a PNG screenshot.
 */
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';

export const chromium = ['chromium', 'chromium-browser', 'google-chrome'].find((b) => spawnSync('sh', ['-c', `command -v ${b}`]).status === 0);
const HEADLESS = ['--headless', '--no-sandbox', '--disable-gpu', '--virtual-time-budget=5000'];

/** The DOM of `url` (a file:// URL, a #fragment allowed) once its scripts ran. */
export function dumpDom(url: string): string {
  return spawnSync(chromium!, [...HEADLESS, '--dump-dom', url], { encoding: 'utf8', timeout: 90_000 }).stdout ?? '';
}

/** The numeric data-* marks on <body> (-1 for one the page did not set, through `mark`). */
export function bodyMarks(dom: string): { attrs: Record<string, number>; mark: (name: string) => number } {
  const body = /<body[^>]*>/.exec(dom)?.[0] ?? '';
  const attrs: Record<string, number> = {};
  for (const m of body.matchAll(/data-([a-z-]+)="(\d+)"/g)) attrs[m[1]] = Number(m[2]);
  return { attrs, mark: (name) => attrs[name] ?? -1 };
}

/** A PNG of `url` at width x height; its size in bytes (0: none written). */
export function screenshot(url: string, png: string, width = 1280, height = 1700): number {
  spawnSync(chromium!, [...HEADLESS, `--window-size=${width},${height}`, `--screenshot=${png}`, url], { timeout: 90_000 });
  try {
    return statSync(png).size;
  } catch {
    return 0;
  }
}

export interface Opened { rendered: number; charts: number; errors: number; png: number; attrs: Record<string, number> }

export function openInChromium(file: string, png: string, height = 1700): Opened {
  const { attrs, mark } = bodyMarks(dumpDom(`file://${file}`));
  const size = screenshot(`file://${file}`, png, 1280, height);
  return { rendered: mark('rendered'), charts: mark('charts'), errors: mark('errors'), png: size, attrs };
}
