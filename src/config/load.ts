import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createJiti } from 'jiti';
import { SandboxError } from '../errors.js';
import { sandboxRunHome } from '../home.js';
import { instantiatePresets, parsePresets } from './presets-schema.js';
import { configSchema, describeIssues } from './schema.js';
import type { LoadedSandboxRunConfig } from './types.js';

/** `import ... from 'sandbox-run'` in a config file means this very copy, wherever the config lives. */
const SELF = fileURLToPath(new URL('../index.js', import.meta.url));

const NAMES = ['sandbox.config.ts', 'sandbox.config.mts', 'sandbox.config.js', 'sandbox.config.mjs', 'sandbox.config.json'];

export interface LoadedConfig {
  path: string;
  config: LoadedSandboxRunConfig;
}

/** The nearest config file from `cwd` upward, or undefined. */
export function findConfig(cwd: string): string | undefined {
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    for (const name of NAMES) if (existsSync(join(dir, name))) return join(dir, name);
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * jiti's transpile cache: a copy of every config file, secrets in `env`
 * included. Its default is the world-readable /tmp/jiti; ours is private.
 */
function jitiCache(): string {
  const dir = join(sandboxRunHome(), 'jiti');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  return dir;
}

/**
 * Loads and validates a config file. TypeScript configs load on Node 20
 * through jiti; a bad config fails with the file, the key and what is wrong.
 * Presets given as data (`{ "postgres": { ... } }`) become preset objects,
 * and every preset's relative paths resolve against the config's directory.
 */
export async function loadConfig(path: string): Promise<LoadedConfig> {
  let raw: unknown;
  try {
    raw = path.endsWith('.json')
      ? JSON.parse(readFileSync(path, 'utf8'))
      : await createJiti(import.meta.url, { moduleCache: false, fsCache: jitiCache(), alias: { 'sandbox-run': SELF } }).import(path, { default: true });
  } catch (error) {
    throw new SandboxError('BAD_OPTIONS', `${path}: cannot load: ${(error as Error).message.split('\n')[0]}`);
  }
  // Presets first, with their own schema: the rest of the config then sees preset objects.
  if (typeof raw === 'object' && raw !== null && 'presets' in raw && raw.presets !== undefined) {
    const presets = parsePresets(raw.presets);
    if ('error' in presets) throw new SandboxError('BAD_OPTIONS', `${path}: ${presets.error}`);
    try {
      raw = { ...raw, presets: instantiatePresets(presets.entries, dirname(path)) };
    } catch (error) {
      throw new SandboxError('BAD_OPTIONS', `${path}: ${(error as Error).message}`);
    }
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw new SandboxError('BAD_OPTIONS', `${path}: ${describeIssues(parsed.error)}`);
  return { path, config: parsed.data as LoadedSandboxRunConfig };
}
