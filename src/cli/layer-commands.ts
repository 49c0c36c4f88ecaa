import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { findConfig, loadConfig } from '../config/load.js';
import { ExitCode } from '../errors.js';
import { keptDiff } from '../kept/diff.js';
import { removeKeptRuns } from '../kept/runs.js';
import type { DiffEntry } from '../layers/diff.js';
import { isImage } from '../layers/image-source.js';
import { exportOci } from '../layers/oci.js';
import { type LayerStore, openStore } from '../layers/store.js';
import type { LayerInfo } from '../layers/types.js';
import { UsageError } from './usage-error.js';

/** `C /path`; a relation file written through copyUp 'pages' says how many blocks its delta holds. */
function diffLine(entry: DiffEntry): string {
  return `${entry.kind} ${entry.path}${entry.blocks !== undefined ? ` (${entry.blocks} block${entry.blocks === 1 ? '' : 's'} written, copyUp 'pages')` : ''}`;
}

/** The names `main.ts` treats as sandbox-run commands rather than programs to sandbox. */
export const LAYER_COMMANDS = ['layers', 'inspect', 'rm', 'prune', 'snapshot', 'build', 'diff', 'export', 'import', 'verify'] as const;

type StoreArgs = { store?: string };

function withStore<T>(y: Argv<T>) {
  return y.option('store', { type: 'string', describe: 'Layer store directory (default: $SANDBOX_RUN_HOME/store)', requiresArg: true });
}

function store(args: StoreArgs): Promise<LayerStore> {
  return openStore(args.store ? { dir: args.store } : {});
}

/** 1.2 MB, like docker images. */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

const short = (digest: string | undefined) => (digest ? digest.slice('sha256:'.length, 'sha256:'.length + 12) : '');

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => row[col]!.length)));
  return rows
    .map((row) =>
      row
        .map((cell, col) => cell.padEnd(widths[col]!))
        .join('   ')
        .trimEnd(),
    )
    .join('\n');
}

function layerLine(verb: string, info: LayerInfo): string {
  return `${verb} ${info.names.join(', ') || '<none>'} ${info.digest} (${humanSize(info.size)})`;
}

/** A command module whose handler states the arguments it reads (yargs' inferred types stop at the builder). */
function command<A>(spec: {
  command: string;
  describe: string;
  // biome-ignore lint/suspicious/noExplicitAny: each command's builder adds its own flags; yargs types them per command
  builder: (y: Argv) => Argv<any>;
  handler: (args: A) => Promise<void>;
  // biome-ignore lint/suspicious/noExplicitAny: see builder above
}): CommandModule<object, any> {
  return {
    ...spec,
    handler: async (args) => {
      // If a bug left the command waiting on nothing, Node would exit 0 with
      // the work half done: say so and fail instead.
      const stalled = () => {
        console.error(`sandbox-run: internal error: ${spec.command.split(' ')[0]} stopped before finishing (nothing left to wait for)`);
        process.exitCode = ExitCode.setup;
      };
      process.once('beforeExit', stalled);
      try {
        await spec.handler(args as unknown as A);
      } finally {
        process.off('beforeExit', stalled);
      }
    },
  };
}

/** The lower dirs a kept run recorded, if it did. */
function keptLowers(file: string): string[] {
  try {
    const { lower } = JSON.parse(readFileSync(file, 'utf8')) as { lower?: unknown };
    return Array.isArray(lower) ? lower.filter((dir): dir is string => typeof dir === 'string') : [];
  } catch {
    return [];
  }
}

/**
 * The layer commands as yargs command modules. `done` receives the exit
 * code (always 0: failures throw and main.ts prints them).
 */
// biome-ignore lint/suspicious/noExplicitAny: commands with different flags in one list
export function layerCommands(done: (code: number) => void): CommandModule<object, any>[] {
  const ok = () => done(0);
  return [
    command({
      command: 'layers',
      describe: 'List the layers in the store',
      builder: (y: Argv) => withStore(y).option('json', { type: 'boolean', describe: 'Print as JSON' }),
      handler: async (args: StoreArgs & { json?: boolean }) => {
        const layers = await (await store(args)).list();
        if (args.json) console.log(JSON.stringify(layers, null, 2));
        else {
          // A STATUS column only when something is wrong, so the usual table stays as it was.
          const anyCorrupt = layers.some((info) => info.corrupt);
          const rows = [['NAME', 'DIGEST', 'SIZE', 'PARENT', 'CREATED', ...(anyCorrupt ? ['STATUS'] : [])]];
          for (const info of layers)
            for (const name of info.names.length ? info.names : ['<none>'])
              rows.push([
                name,
                short(info.digest),
                humanSize(info.size),
                short(info.parent),
                info.created,
                ...(anyCorrupt ? [info.corrupt ? `corrupt: ${info.corrupt}` : 'ok'] : []),
              ]);
          console.log(table(rows));
        }
        ok();
      },
    }),
    command({
      command: 'inspect <name>',
      describe: 'Show everything the store knows about a layer, as JSON',
      builder: (y: Argv) => withStore(y).positional('name', { type: 'string', demandOption: true }),
      handler: async (args: StoreArgs & { name: string }) => {
        const s = await store(args);
        const info = await s.require(args.name);
        const corrupt = await s.check(args.name);
        console.log(JSON.stringify(corrupt ? { ...info, corrupt } : info, null, 2));
        ok();
      },
    }),
    command({
      command: 'verify [names..]',
      describe: 'Re-digest layers (default: all) and report each as ok or corrupt; re-seal intact layers whose seal is stale',
      builder: (y: Argv) => withStore(y).positional('names', { type: 'string', array: true }),
      handler: async (args: StoreArgs & { names?: string[] }) => {
        const results = await (await store(args)).verify(...(args.names ?? []));
        for (const result of results) {
          const label = `${result.names.join(', ') || '<none>'} ${result.digest}`;
          console.log(`${result.status} ${label}${result.reason ? `: ${result.reason}` : ''}`);
        }
        if (!results.length) console.log('no layers');
        // 1: the check ran and found damage (2 and 125 stay for bad input and failures to run).
        done(results.some((result) => result.status === 'corrupt') ? 1 : 0);
      },
    }),
    command({
      command: 'rm <names..>',
      describe: 'Remove layer names; layers left unnamed and unused are deleted',
      builder: (y: Argv) => withStore(y).positional('names', { type: 'string', array: true, demandOption: true }),
      handler: async (args: StoreArgs & { names: string[] }) => {
        const removed = await (await store(args)).remove(...args.names);
        console.log(`untagged: ${args.names.join(', ')}`);
        for (const info of removed) console.log(`deleted: ${info.digest}`);
        ok();
      },
    }),
    command({
      command: 'prune',
      describe: 'Delete unnamed unused layers, leftovers of dead processes and kept failed runs',
      builder: (y: Argv) => withStore(y),
      handler: async (args: StoreArgs) => {
        const result = await (await store(args)).prune();
        for (const info of result.removed) console.log(`deleted: ${info.digest} (${humanSize(info.size)})`);
        for (const path of result.leftovers) console.log(`deleted leftover: ${path}`);
        for (const path of removeKeptRuns()) console.log(`deleted kept run: ${path}`);
        console.log(`freed ${humanSize(result.freedBytes)} of layers`);
        ok();
      },
    }),
    command({
      command: 'snapshot <dir>',
      describe: 'Copy a directory into a new layer (reflink when the filesystem can)',
      builder: (y: Argv) =>
        withStore(y)
          .positional('dir', { type: 'string', demandOption: true })
          .option('name', { type: 'string', demandOption: true, requiresArg: true, describe: 'Name of the layer' })
          .option('parent', { type: 'string', requiresArg: true, describe: 'Layer this one stacks on' }),
      handler: async (args: StoreArgs & { dir: string; name: string; parent?: string }) => {
        if (!existsSync(args.dir) || !statSync(args.dir).isDirectory()) throw new UsageError(`snapshot: '${args.dir}' is not a directory`);
        const info = await (await store(args)).snapshot(args.dir, { name: args.name, ...(args.parent ? { parent: args.parent } : {}) });
        console.log(`${layerLine('snapshot', info)}${info.source.kind === 'snapshot' ? ` by ${info.source.method}` : ''}`);
        ok();
      },
    }),
    command({
      command: 'build',
      describe: 'Run a command in a sandbox on top of a parent layer and commit its writes as a layer (cached)',
      builder: (y: Argv) =>
        withStore(y)
          .usage(
            '$0 build --name NAME [--parent P] --mount /PATH [--input GLOB...] -- CMD [ARGS...]\n$0 build   (no arguments: every preset of the config file)',
          )
          .option('name', { type: 'string', requiresArg: true, describe: 'Name of the layer it makes' })
          .option('parent', { type: 'string', requiresArg: true, describe: 'Layer to build on (default: an empty one)' })
          .option('mount', { type: 'string', requiresArg: true, describe: 'Where the layer appears in the build sandbox' })
          .option('input', { type: 'string', array: true, nargs: 1, requiresArg: true, describe: 'Files or globs whose content is part of the cache key' })
          .option('cache-key', { type: 'string', requiresArg: true, describe: 'Extra text in the cache key' })
          .option('force', { type: 'boolean', describe: 'Rebuild even if cached' }),
      handler: async (
        args: StoreArgs & { name?: string; parent?: string; mount?: string; input?: string[]; cacheKey?: string; force?: boolean; '--'?: (string | number)[] },
      ) => {
        const command = (args['--'] ?? []).map(String);
        if (!args.name && !command.length) {
          await buildConfigPresets(!!args.force);
          return ok();
        }
        if (!args.name || !args.mount) throw new UsageError("build: give --name and --mount (or nothing, to build the config file's presets)");
        if (!command.length) throw new UsageError('build: give the command after --');
        const s = await store(args);
        const started = new Date().toISOString();
        const info = await s.build(
          {
            name: args.name,
            mountPoint: args.mount,
            run: command,
            ...(args.parent ? { parent: args.parent } : {}),
            ...(args.input ? { inputs: args.input } : {}),
            ...(args.cacheKey ? { cacheKey: args.cacheKey } : {}),
          },
          { force: !!args.force },
        );
        // A layer committed before this command started came from the cache.
        console.log(layerLine(info.created < started ? 'cached' : 'built', info));
        ok();
      },
    }),
    command({
      command: 'diff <path>',
      describe: 'Added (A), changed (C) and deleted (D) paths of a writable layer, a kept run or a layer',
      builder: (y: Argv) =>
        withStore(y)
          .positional('path', { type: 'string', demandOption: true, describe: 'A writable layer dir, a kept job dir (with upper/), or a layer name' })
          .option('lower', {
            type: 'string',
            array: true,
            nargs: 1,
            requiresArg: true,
            describe: "Lower dir(s), top first (default: a kept run's kept.json, else none: all is added)",
          })
          .option('json', { type: 'boolean', describe: 'Print as JSON' }),
      handler: async (args: StoreArgs & { path: string; lower?: string[]; json?: boolean }) => {
        const s = await store(args);
        // A kept sandbox with several layers (its database's too): each one's changes, under its mount point.
        const layered = !args.lower ? keptDiff(args.path) : undefined;
        if (layered) {
          const entries = (
            await Promise.all(layered.map(async (layer) => (await s.diff(layer.upper, layer.lowers)).map((e) => ({ ...e, path: `${layer.target}${e.path}` }))))
          ).flat();
          if (args.json) console.log(JSON.stringify(entries, null, 2));
          else for (const entry of entries) console.log(diffLine(entry));
          return ok();
        }
        let upper: string;
        let lowers = args.lower ?? [];
        if (existsSync(args.path) && statSync(args.path).isDirectory()) {
          const kept = existsSync(join(args.path, 'upper')) && statSync(join(args.path, 'upper')).isDirectory();
          upper = kept ? join(args.path, 'upper') : args.path;
          // A run kept by --keep-failed says in kept.json what it was a layer over.
          if (kept && !args.lower) lowers = keptLowers(join(args.path, 'kept.json'));
        } else {
          const info = await s.get(args.path);
          if (!info) throw new UsageError(`diff: '${args.path}' is neither a directory nor a layer`);
          upper = info.path;
          if (!args.lower) lowers = info.parent ? await s.lowerDirs(info.parent) : [];
        }
        const entries = await s.diff(upper, lowers);
        if (args.json) console.log(JSON.stringify(entries, null, 2));
        else for (const entry of entries) console.log(diffLine(entry));
        ok();
      },
    }),
    command({
      command: 'export <name>',
      describe: 'Write a layer (with its parents) to a tar archive (.tar.gz: gzipped)',
      builder: (y: Argv) =>
        withStore(y)
          .positional('name', { type: 'string', demandOption: true })
          .option('output', {
            alias: 'o',
            type: 'string',
            demandOption: true,
            requiresArg: true,
            describe: 'FILE.tar or FILE.tar.gz (--format oci: a new directory)',
          })
          .option('format', {
            choices: ['tar', 'oci'] as const,
            default: 'tar' as const,
            describe: 'tar: for sandbox-run import; oci: an OCI image layout directory for skopeo, crane or oras',
          })
          .option('single', { type: 'boolean', describe: 'Only this layer, not its parents' }),
      handler: async (args: StoreArgs & { name: string; output: string; format?: 'tar' | 'oci'; single?: boolean }) => {
        const s = await store(args);
        const layers =
          args.format === 'oci'
            ? await exportOci(s, args.name, args.output, { single: !!args.single })
            : await s.export(args.name, args.output, { single: !!args.single });
        for (const info of layers) console.log(layerLine('exported', info));
        ok();
      },
    }),
    command({
      command: 'import <file>',
      describe: 'Restore layers from an archive made by export, or import an OCI image layout (dir or tar) or a docker save archive, verifying every digest',
      builder: (y: Argv) =>
        withStore(y)
          .positional('file', { type: 'string', demandOption: true })
          .option('platform', {
            type: 'string',
            requiresArg: true,
            describe: 'Image: OS/ARCH[/VARIANT] to take from a multi-platform index (default: this host)',
          })
          .option('ref', { type: 'string', requiresArg: true, describe: 'Image: which image of a layout or archive holding several' })
          .option('name', { type: 'string', requiresArg: true, describe: 'Image: the name of its top layer (default: the image reference, e.g. postgres:16)' }),
      handler: async (args: StoreArgs & { file: string; platform?: string; ref?: string; name?: string }) => {
        const s = await store(args);
        const options = {
          ...(args.platform ? { platform: args.platform } : {}),
          ...(args.ref ? { ref: args.ref } : {}),
          ...(args.name ? { name: args.name } : {}),
        };
        if (await isImage(args.file)) {
          const result = await s.importImage(args.file, options);
          for (const info of result.layers) console.log(layerLine('imported', info));
          if (result.setuidDropped) console.log(`dropped the setuid/setgid bits of ${result.setuidDropped} files`);
        } else {
          if (Object.keys(options).length) throw new UsageError('import: --platform, --ref and --name apply to images, not to sandbox-run layer archives');
          for (const info of await s.import(args.file)) console.log(layerLine('imported', info));
        }
        ok();
      },
    }),
  ];
}

/** `sandbox-run build` with no arguments: every preset in the config file, cached (unless forced), with progress. */
async function buildConfigPresets(force: boolean): Promise<void> {
  const path = findConfig(process.cwd());
  if (!path) throw new UsageError('build: no --name given and no sandbox.config.{ts,mts,js,mjs,json} found from here upward');
  const { config } = await loadConfig(path);
  const presets = config.presets ?? [];
  if (!presets.length) console.log(`${path}: no presets to build`);
  for (const [i, preset] of presets.entries()) {
    const started = Date.now();
    process.stdout.write(`[${i + 1}/${presets.length}] ${preset.name}: `);
    const result = await preset.prepare({ force });
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    // A preset that reports nothing (older or hand-written) gets the old line.
    console.log(!result ? `ready in ${seconds}s` : result.cached ? `cached ${result.description}` : `built ${result.description} in ${seconds}s`);
  }
}
