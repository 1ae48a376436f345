/**
 * A real headless Chromium for the HTML tests (Debian's `chromium`; .ci/run installs it): the
 * page's own marks on <body> after its script ran (data-rendered: charts drawn with data,
 * data-charts: charts it meant to draw, data-errors: errors thrown), and a PNG screenshot.
 */
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';

export const chromium = ['chromium', 'chromium-browser', 'google-chrome'].find((b) => spawnSync('sh', ['-c', `command -v ${b}`]).status === 0);
const HEADLESS = ['--headless', '--no-sandbox', '--disable-gpu', '--virtual-time-budget=5000'];

export interface Opened { rendered: number; charts: number; errors: number; png: number; attrs: Record<string, number> }

export function openInChromium(file: string, png: string, height = 1700): Opened {
  const dom = spawnSync(chromium!, [...HEADLESS, '--dump-dom', `file://${file}`], { encoding: 'utf8', timeout: 60_000 });
  const body = /<body[^>]*>/.exec(dom.stdout ?? '')?.[0] ?? '';
  const attrs: Record<string, number> = {};
  for (const m of body.matchAll(/data-([a-z-]+)="(\d+)"/g)) attrs[m[1]] = Number(m[2]);
  const attr = (name: string) => attrs[name] ?? -1;
  spawnSync(chromium!, [...HEADLESS, `--window-size=1280,${height}`, `--screenshot=${png}`, `file://${file}`], { timeout: 60_000 });
  let size = 0;
  try {
    size = statSync(png).size;
  } catch {
    size = 0;
  }
  return { rendered: attr('rendered'), charts: attr('charts'), errors: attr('errors'), png: size, attrs };
}
