// defineConfig takes presets as objects and as data: the data form type-checks
// in a .ts/.mjs config as it validates in sandbox.config.json (tsc checks this file).
import { describe, expect, it } from 'vitest';
import { parsePresets } from '../../src/config/presets-schema.js';
import { defineConfig } from '../../src/config/types.js';
import { postgres } from '../../src/presets/postgres/index.js';

describe('defineConfig presets', () => {
  it('accepts preset objects and the data form, and the loader validates both', () => {
    const config = defineConfig({
      presets: [postgres({ database: 'a' }), { postgres: { database: 'b', auth: 'scram-sha-256', password: 'pw', ssl: true, connect: 'tcp' } }],
    });
    expect('entries' in parsePresets(config.presets)).toBe(true);
  });

  it('rejects a misspelt option in the data form, at compile time and at load time', () => {
    // @ts-expect-error `databse` is not a postgres option
    const config = defineConfig({ presets: [{ postgres: { databse: 'b' } }] });
    expect(parsePresets(config.presets)).toEqual({ error: expect.stringMatching(/databse/) });
  });
});
