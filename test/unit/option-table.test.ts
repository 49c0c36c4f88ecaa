// The option table is the one source of sandbox options: every option must
// reach the config schema, the CLI flags and the helper's argument list (or
// say why not). Adding an option without an example here fails the first test.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import yargs from 'yargs';
import { optionsFromFlags, sandboxFlags } from '../../src/cli/sandbox-flags.js';
import { configSchema } from '../../src/config/schema.js';
import { LayerStore } from '../../src/layers/store.js';
import { sandboxEnv } from '../../src/sandbox/env.js';
import { helperArgs } from '../../src/sandbox/helper-argv.js';
import { type OptionSpec, SANDBOX_OPTION_NAMES, SANDBOX_OPTIONS, type SandboxOptionName } from '../../src/sandbox/option-table.js';
import { normalizeOptions, type SandboxOptions } from '../../src/sandbox/options.js';
import { tempDir } from '../integration/support.js';

const home = tempDir('sandbox-run-home-');
process.env.HOME = home.path;
delete process.env.SANDBOX_RUN_CGROUP;
afterAll(() => home.remove());
mkdirSync(join(home.path, 'layer/upper'), { recursive: true });
mkdirSync(join(home.path, 'layer/work'));
writeFileSync(join(home.path, '.hidden-by-test'), 'x');
writeFileSync(join(home.path, '.npmrc'), 'x');
process.chdir('/usr');
// An image in the default store (under $HOME/.cache here) for `image` and `images`.
mkdirSync(join(home.path, 'image/etc'), { recursive: true });
writeFileSync(join(home.path, 'image/etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
beforeAll(async () => {
  delete process.env.SANDBOX_RUN_HOME;
  delete process.env.XDG_CACHE_HOME;
  await new LayerStore().snapshot(join(home.path, 'image'), { name: 'unit-image:1' });
});

/** A value for each option, and the command line that gives it where there is one. */
const EXAMPLES: Record<SandboxOptionName, { value: unknown; argv?: string[] }> = {
  cwd: { value: '/etc', argv: ['--cwd', '/etc'] },
  workdir: { value: 'ro', argv: ['--workdir', 'ro'] },
  workdirLayer: { value: { upper: join(home.path, 'layer/upper'), work: join(home.path, 'layer/work') } },
  image: { value: 'unit-image:1', argv: ['--image', 'unit-image:1'] },
  images: { value: [{ ref: 'unit-image:1', at: '/run/images/unit' }] },
  overlays: { value: [{ lower: ['/usr', '/etc'], target: '/data' }], argv: ['--overlay', '/usr+/etc:/data'] },
  binds: { value: [{ source: '/etc', target: '/host-etc', readonly: true }], argv: ['--ro-bind', '/etc:/host-etc'] },
  tmpfs: { value: ['/scratch'], argv: ['--tmpfs', '/scratch'] },
  network: { value: 'host', argv: ['--network', 'host'] },
  env: { value: { A: '1', B: undefined }, argv: ['-e', 'A=1', '--unset-env', 'B'] },
  inheritEnv: { value: false, argv: ['--clean-env'] },
  hostname: { value: 'box', argv: ['--hostname', 'box'] },
  uid: { value: 1000, argv: ['--uid', '1000'] },
  gid: { value: 1000, argv: ['--gid', '1000'] },
  tmpfsSize: { value: '64m', argv: ['--tmpfs-size', '64m'] },
  upperSize: { value: '1g', argv: ['--upper-size', '1g'] },
  concurrency: { value: 1000 },
  rlimits: { value: { nofile: [10, 20] }, argv: ['--rlimit', 'nofile=10:20'] },
  keepFds: { value: [5] },
  mask: { value: ['.hidden-by-test'], argv: ['--mask', '.hidden-by-test'] },
  allowHome: { value: ['.npmrc'], argv: ['--allow-home', '.npmrc'] },
  passEnv: { value: ['TEST_ONLY_TOKEN'], argv: ['--pass-env', 'TEST_ONLY_TOKEN'] },
  memory: { value: '512m', argv: ['--memory', '512m'] },
  pids: { value: 100, argv: ['--pids', '100'] },
  cpus: { value: 1.5, argv: ['--cpus', '1.5'] },
  cgroupParent: { value: '/sys/fs/cgroup', argv: ['--cgroup-parent', '/sys/fs/cgroup'] },
};

const specs = Object.entries(SANDBOX_OPTIONS as Record<string, OptionSpec>) as [SandboxOptionName, OptionSpec][];
/** What an option needs to have an effect: a cgroup limit needs a cgroup. */
const context = (name: SandboxOptionName): SandboxOptions => (name === 'memory' || name === 'cpus' ? { cgroupParent: '/sys/fs/cgroup' } : {});

describe('the option table', () => {
  it('has an example for every option, and no example for an option it lacks', () => {
    expect(Object.keys(EXAMPLES).sort()).toEqual([...SANDBOX_OPTION_NAMES].sort());
  });

  it.each(specs)('%s reaches the config schema, or says why not', (name, spec) => {
    const parsed = configSchema.safeParse({ sandbox: { [name]: EXAMPLES[name].value } });
    if (spec.notInConfig) expect(parsed.success, `${name} is not for config files: ${spec.notInConfig}`).toBe(false);
    else expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
  });

  it.each(specs)('%s reaches the CLI flags, or says why not', (name, spec) => {
    const parser = sandboxFlags(yargs([]).strict());
    const declared = Object.keys((parser as unknown as { getOptions(): { key: Record<string, unknown> } }).getOptions().key);
    if (!Array.isArray(spec.flags)) {
      expect(EXAMPLES[name].argv, `${name} has no flag: ${(spec.flags as { none: string }).none}`).toBeUndefined();
      return;
    }
    for (const flag of spec.flags) expect(declared).toContain(flag.name);
    const argv = parser.parseSync(EXAMPLES[name].argv!) as Record<string, unknown>;
    expect(optionsFromFlags(argv)[name]).toEqual(EXAMPLES[name].value);
  });

  it.each(specs)("%s changes the helper's argument list, or has its effect elsewhere", (name, spec) => {
    const base = normalizeOptions(context(name));
    const changed = normalizeOptions({ ...context(name), [name]: EXAMPLES[name].value });
    if (typeof spec.helper === 'string') {
      expect(helperArgs(changed, ['true'])).not.toEqual(helperArgs(base, ['true']));
      return;
    }
    // Not an argument: the environment, or the sandbox's cgroup.
    process.env.TEST_ONLY_TOKEN = 'x';
    try {
      const elsewhere = (o: typeof base) => JSON.stringify([sandboxEnv(o), o.limits, o.cgroupParent]);
      expect(elsewhere(changed), `${name}: ${spec.helper.none}`).not.toEqual(elsewhere(base));
    } finally {
      delete process.env.TEST_ONLY_TOKEN;
    }
  });
});
