import type { CommandModule } from 'yargs';
import { parsePlatform } from '../layers/oci-index.js';
import { terminalProgress } from '../layers/registry/progress.js';
import { pullImage } from '../layers/registry/pull.js';
import { parseReference } from '../layers/registry/reference.js';
import { openStore } from '../layers/store.js';
import { humanSize } from './layer-commands.js';
import { UsageError } from './usage-error.js';

interface PullArgs {
  ref: string;
  store?: string;
  platform?: string;
  name?: string;
  plainHttp?: boolean;
  insecure?: boolean;
  quiet?: boolean;
}

/** `sandbox-run pull REF`: an image from a registry into the layer store (see src/layers/registry/pull.ts). */
export function pullCommand(done: (exitCode: number) => void): CommandModule<object, PullArgs> {
  return {
    command: 'pull <ref>',
    describe: 'Pull an image from a registry (OCI distribution API) into the layer store as a stack of layers, verifying every digest',
    builder: (y) =>
      y
        .positional('ref', { type: 'string', demandOption: true, describe: '[REGISTRY/]REPOSITORY[:TAG|@sha256:DIGEST], e.g. postgres:16, ghcr.io/org/app:1' })
        .option('store', { type: 'string', describe: 'Layer store directory (default: $SANDBOX_RUN_HOME/store)', requiresArg: true })
        .option('platform', { type: 'string', requiresArg: true, describe: 'OS/ARCH[/VARIANT] to take from a multi-platform image (default: this host)' })
        .option('name', { type: 'string', requiresArg: true, describe: 'The name of its top layer (default: the reference, e.g. postgres:16)' })
        .option('plain-http', { type: 'boolean', describe: 'Speak plain HTTP to the registry (one on this machine gets it anyway when it has no TLS)' })
        .option('insecure', { type: 'boolean', describe: 'Do not verify the registry certificate; plain HTTP if it has no TLS' })
        .option('quiet', { alias: 'q', type: 'boolean', describe: 'No progress display (it is shown only on a terminal anyway)' })
        .example('$0 pull postgres:16', 'from Docker Hub (docker.io/library/postgres:16)')
        .example('$0 pull --plain-http registry.lan:5000/team/app:1', 'from a registry without TLS') as never,
    handler: async (args) => {
      // Bad input is refused before the store is opened (which would create a new store's layout).
      parseReference(args.ref);
      if (args.platform) {
        try {
          parsePlatform(args.platform);
        } catch (error) {
          throw new UsageError(`pull: ${(error as Error).message}`);
        }
      }
      const store = await openStore(args.store ? { dir: args.store } : {});
      const progress = process.stderr.isTTY && !args.quiet ? terminalProgress(process.stderr) : undefined;
      const result = await pullImage(store, args.ref, {
        ...(args.platform ? { platform: args.platform } : {}),
        ...(args.name ? { name: args.name } : {}),
        ...(args.plainHttp ? { plainHttp: true } : {}),
        ...(args.insecure ? { insecure: true } : {}),
        ...(progress ? { progress } : {}),
      });
      const total = result.layers.length;
      for (const [i, info] of result.layers.entries()) {
        // Top first, as import prints them; the bottom `present` ones were in the store already.
        const verb = total - i <= result.present ? 'exists' : 'pulled';
        console.log(`${verb} ${info.names.join(', ') || '<none>'} ${info.digest} (${humanSize(info.size)})`);
      }
      console.log(`${result.name}: ${result.reference}@${result.manifestDigest}`);
      if (result.setuidDropped) console.log(`dropped the setuid/setgid bits of ${result.setuidDropped} files`);
      done(0);
    },
  };
}
