import { describe, expect, it } from 'vitest';
import { createPool } from '../../src/pool/index.js';

// Bad pool options fail at createPool, before any thread or sandbox starts.
describe('createPool options', () => {
  it.each([
    [{ size: -1 }, /pool size: expected a whole number >= 0, got -1/],
    [{ size: 1.5 }, /pool size/],
    [{ size: 1, max: 0 }, /pool max: expected a whole number >= 1, got 0/],
    [{ cwd: '/nonexistent-dir-for-sure' }, /working directory '\/nonexistent-dir-for-sure' does not exist/],
  ])('rejects %o', async (options, message) => {
    await expect(createPool(options)).rejects.toMatchObject({ code: 'BAD_OPTIONS', message: expect.stringMatching(message) });
  });
});
