import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createJiti } from 'jiti';
import { SandboxError } from '../errors.js';
import { configSchema, describeIssues } from './schema.js';
import type { SandboxRunConfig } from './types.js';

/** `import ... from 'sandbox-run'` in a config file means this very copy, wherever the config lives. */
const SELF = fileURLToPath(new URL('../index.js', import.meta.url));

const NAMES = ['sandbox.config.ts', 'sandbox.config.mts', 'sandbox.config.js', 'sandbox.config.mjs', 'sandbox.config.json'];

export interface LoadedConfig {
  path: string;
  config: SandboxRunConfig;
}

/** The nearest config file from `cwd` upward, or undefined. */
export function findConfig(cwd: string): string | undefined {
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    for (const name of NAMES) if (existsSync(join(dir, name))) return join(dir, name);
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * Loads and validates a config file. TypeScript configs load on Node 20
 * through jiti; a bad config fails with the file, the key and what is wrong.
 */
export async function loadConfig(path: string): Promise<LoadedConfig> {
  let raw: unknown;
  try {
    raw = path.endsWith('.json')
      ? JSON.parse(readFileSync(path, 'utf8'))
      : await createJiti(import.meta.url, { moduleCache: false, alias: { 'sandbox-run': SELF } }).import(path, { default: true });
  } catch (error) {
    throw new SandboxError('BAD_OPTIONS', `${path}: cannot load: ${(error as Error).message.split('\n')[0]}`);
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw new SandboxError('BAD_OPTIONS', `${path}: ${describeIssues(parsed.error)}`);
  return { path, config: parsed.data as SandboxRunConfig };
}
