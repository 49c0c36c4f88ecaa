// chooseCopyUp, the one place the postgres preset decides how a sandbox pays for the seeded files it touches, with
// the libraries `npm install` built and a store on this machine's temporary directory. Where that directory's
// filesystem clones (XFS reflink=1, btrfs), 'auto' must say reflink instead, which the first case checks.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { reflinkUppers } from '../../src/layers/reflink.js';
import { chooseCopyUp, LAZY_LIBRARY_ENV, PAGES_LIBRARY_ENV, PAGES_VERIFIED } from '../../src/presets/postgres/copy-up.js';

const ROOT = join(import.meta.dirname, '../..');
const PAGES = join(ROOT, 'helper/build/pg-page-cow.so');
const LAZY = join(ROOT, 'helper/build/pg-lazy-write.so');
const dir = mkdtempSync(join(tmpdir(), 'copy-up-choice-'));
const store = join(dir, 'store');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
// Its own SANDBOX_RUN_HOME: the reflink probe makes the disk uppers' directory and remembers its verdict there.
const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ ...process.env, SANDBOX_RUN_HOME: join(dir, 'home'), ...extra });
const clones = await reflinkUppers(store, env());

describe("copyUp 'auto'", () => {
  it('picks pages for every verified major where the store does not clone (reflink where it does)', async () => {
    for (const major of PAGES_VERIFIED) {
      const choice = await chooseCopyUp('auto', store, { major, env: env() });
      expect(choice.mechanism).toBe(clones ? 'reflink' : 'pages');
      if (choice.mechanism === 'pages') expect([choice.pagesLibrary, choice.library]).toEqual([PAGES, LAZY]);
    }
  });

  it.runIf(!clones)('falls back to lazy-open on a major pages is not verified on, and says why', async () => {
    for (const major of [14, 19]) {
      const choice = await chooseCopyUp('auto', store, { major, env: env() });
      expect(choice.mechanism).toBe('lazy-open');
      expect(choice.reason).toContain(`PostgreSQL ${major} is not one of the majors 'pages' is verified on, 15, 16, 17, 18`);
    }
  });

  it.runIf(!clones)('falls back to lazy-open without pg-page-cow.so, and to overlay without either library', async () => {
    const missing = join(dir, 'not-built.so');
    expect((await chooseCopyUp('auto', store, { major: 15, env: env({ [PAGES_LIBRARY_ENV]: missing }) })).mechanism).toBe('lazy-open');
    const none = await chooseCopyUp('auto', store, { major: 15, env: env({ [PAGES_LIBRARY_ENV]: missing, [LAZY_LIBRARY_ENV]: missing }) });
    expect(none.mechanism).toBe('overlay');
    expect(none.reason).toContain('npm rebuild sandbox-run');
  });

  it.runIf(!clones)('treats a library path the loader would split (a space or a colon) as missing', async () => {
    const choice = await chooseCopyUp('auto', store, { major: 15, env: env({ [PAGES_LIBRARY_ENV]: `${PAGES}:x` }) });
    expect(choice.mechanism).toBe('lazy-open');
  });
});

describe('an explicit copyUp', () => {
  it("'pages' is honoured on a major auto would not pick it for", async () => {
    expect((await chooseCopyUp('pages', store, { major: 19, env: env() })).mechanism).toBe('pages');
  });

  it("'pages' without its library fails in one line naming the rebuild", async () => {
    const missing = join(dir, 'not-built.so');
    await expect(chooseCopyUp('pages', store, { major: 15, env: env({ [PAGES_LIBRARY_ENV]: missing }) })).rejects.toThrow(
      /^postgres preset: copyUp 'pages' needs .*not-built\.so and .*pg-lazy-write\.so: run `npm rebuild sandbox-run`/,
    );
  });

  it.runIf(!clones)("'reflink' where the store does not clone fails in one line", async () => {
    await expect(chooseCopyUp('reflink', store, { major: 15, env: env() })).rejects.toThrow(
      /copyUp 'reflink' needs SANDBOX_RUN_HOME on a filesystem that clones/,
    );
  });

  it("'overlay' is always given", async () => {
    expect((await chooseCopyUp('overlay', store, { env: env() })).mechanism).toBe('overlay');
  });
});
