// The published package, installed into another project, works there: the
// helper builds (on install, or on first use where npm skips install scripts)
// and both `npx sandbox-run` and `import 'sandbox-run'` run sandboxes.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from './support.js';

describe('npm pack, installed elsewhere', () => {
  let project: ReturnType<typeof tempDir>;
  beforeAll(async () => {
    project = tempDir('sandbox-run-consumer-');
    // dist/ is fresh from the global setup; scripts would rebuild it under other tests' feet.
    const { stdout } = await execa('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', project.path], { cwd: ROOT });
    const { filename } = (JSON.parse(stdout) as { filename: string }[])[0]!;
    writeFileSync(join(project.path, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    await execa('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(project.path, filename)], { cwd: project.path });
  }, 180_000);
  afterAll(() => project.remove());

  it('runs `npx sandbox-run`', async () => {
    const { stdout } = await execa('npx', ['sandbox-run', '--', 'sh', '-c', 'echo inside $(hostname)'], { cwd: project.path });
    expect(stdout).toBe('inside sandbox');
  });

  it('imports the API from the package root', async () => {
    const script = "import { run } from 'sandbox-run'; const r = await run('id', ['-u']); console.log(r.exitCode, r.stdout);";
    const { stdout } = await execa('node', ['--input-type=module', '-e', script], { cwd: project.path });
    expect(stdout).toMatch(/^0 \d+$/);
  });
});
