import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_WRITE_BACK, writeBackMatcher } from '../../src/vitest/options.js';
import { writeBack } from '../../src/vitest/write-back.js';

describe('writeBackMatcher', () => {
  const wanted = writeBackMatcher(DEFAULT_WRITE_BACK);

  it('selects files inside __snapshots__ at any depth and the attachments directory', () => {
    expect(wanted('__snapshots__/a.test.ts.snap')).toBe(true);
    expect(wanted('src/deep/__snapshots__/b.snap')).toBe(true);
    expect(wanted('.vitest-attachments/x.png')).toBe(true);
  });

  it('leaves everything else in the sandbox', () => {
    expect(wanted('__snapshots__')).toBe(false); // a file of that name is not inside one
    expect(wanted('src/a.test.ts')).toBe(false);
    expect(wanted('not__snapshots__/a.snap')).toBe(false);
    expect(wanted('.vitest-attachments-old/x')).toBe(false);
  });

  it('takes root-relative paths, with or without ./ and trailing slashes', () => {
    const custom = writeBackMatcher(['./out/', 'report.txt', '**/golden']);
    expect(custom('out/a/b.txt')).toBe(true);
    expect(custom('report.txt')).toBe(true);
    expect(custom('x/golden/y.json')).toBe(true);
    expect(custom('outside/out/a')).toBe(false);
    expect(custom('report.txt.bak')).toBe(false);
  });
});

describe('writeBack', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('copies wanted files from the writable layer to the host and skips the rest', async () => {
    dir = mkdtempSync(join(tmpdir(), 'sandbox-run-wb-'));
    const upper = join(dir, 'upper');
    const root = join(dir, 'root');
    mkdirSync(join(upper, 'src/__snapshots__'), { recursive: true });
    mkdirSync(root);
    writeFileSync(join(upper, 'src/__snapshots__/a.snap'), 'new snapshot');
    writeFileSync(join(upper, 'scratch.txt'), 'thrown away');
    const done = await writeBack(upper, root, writeBackMatcher(DEFAULT_WRITE_BACK));
    expect(done).toEqual(['src/__snapshots__/a.snap']);
    expect(readFileSync(join(root, 'src/__snapshots__/a.snap'), 'utf8')).toBe('new snapshot');
    expect(existsSync(join(root, 'scratch.txt'))).toBe(false);
  });
});
