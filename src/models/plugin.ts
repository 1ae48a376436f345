/**
 * Sharing models from outside ptlab: `--model ./my_model.mjs` (or a package name) imports an ES
 * module whose default export is a factory `(api) => model`: `api` is MODEL_API (src/models/api.ts),
 * `model` is { name, rules, bugs?, seed?, basedOn?, create(bug) } — a ModelInfo, as the catalog's.
 * The module is loaded in the CLI (to check it and its bugs) and again in every CPU worker, under
 * the same key: the absolute path (or the package name) it was given as.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { MODEL_API } from './api.js';
import { MODELS, type ModelInfo } from './index.js';

/** A --model value that names a plugin rather than a catalog model. */
export function isPluginSpec(spec: string): boolean {
  return spec.startsWith('./') || spec.startsWith('../') || isAbsolute(spec) || /\.m?js$/.test(spec) || (spec.includes('/') && !(spec in MODELS));
}

const PluginSchema = z.object({
  name: z.string().min(1),
  rules: z.string().min(1),
  seed: z.string().default('a plugin'),
  bugs: z.record(z.string(), z.string()).default({}),
  basedOn: z.string().optional(),
  create: z.custom<(bug: string) => unknown>((v) => typeof v === 'function', { message: 'create must be a function (bug) => the model\'s hooks' }),
});

/** Thrown for a plugin that cannot be used (the CLI makes it bad input, exit 2). */
export class PluginError extends Error {}

/**
 * Loads the plugin at `spec` (a path, relative to the working directory, or a package name) and
 * registers it in MODELS; returns its key. Loading the same key twice is a no-op.
 */
export async function loadModelPlugin(spec: string): Promise<string> {
  const path = spec.startsWith('.') || isAbsolute(spec) || /\.m?js$/.test(spec) ? resolve(spec) : null;
  const key = path ?? spec;
  if (MODELS[key] !== undefined) return key;
  if (path !== null && !existsSync(path)) throw new PluginError(`--model ${spec}: no such file`);
  let mod: { default?: unknown };
  try {
    mod = (await import(path !== null ? pathToFileURL(path).href : spec)) as { default?: unknown };
  } catch (e) {
    throw new PluginError(`--model ${spec}: the module could not be loaded (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`);
  }
  if (typeof mod.default !== 'function') throw new PluginError(`--model ${spec}: its default export must be a function (api) => model`);
  let made: unknown;
  try {
    made = (mod.default as (api: typeof MODEL_API) => unknown)(MODEL_API);
  } catch (e) {
    throw new PluginError(`--model ${spec}: its factory threw (${e instanceof Error ? e.message : String(e)})`);
  }
  const r = PluginSchema.safeParse(made);
  if (!r.success) throw new PluginError(`--model ${spec}: ${r.error.issues[0].path.join('.') || 'the model'}: ${r.error.issues[0].message}`);
  if (r.data.basedOn !== undefined && MODELS[r.data.basedOn] === undefined) throw new PluginError(`--model ${spec}: basedOn names no catalog model ('${r.data.basedOn}')`);
  const info: ModelInfo = { ...r.data, create: r.data.create as ModelInfo['create'] };
  MODELS[key] = info;
  return key;
}
