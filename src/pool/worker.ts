// A tinypool task that holds one sandbox for its whole life. The sandbox's
// helper is spawned from this worker thread, and PR_SET_PDEATHSIG fires when
// the spawning *thread* exits: so the sandbox lives exactly as long as the
// task, and a pool whose threads are destroyed takes its sandboxes with it.
import type { MessagePort } from 'node:worker_threads';
import { createSandbox, type CreateSandboxOptions } from '../sandbox/create.js';

export interface HoldTask {
  /** Plain options (presets already resolved into overlays, binds, services). */
  options: Omit<CreateSandboxOptions, 'presets'>;
  port: MessagePort;
}

/** What the main thread learns once the sandbox and its services are ready. */
export interface HeldSandbox {
  pid: number;
  env: Record<string, string>;
}

export default async function holdSandbox({ options, port }: HoldTask): Promise<void> {
  const sandbox = await createSandbox(options);
  try {
    const released = new Promise((resolve) => port.once('message', resolve));
    port.postMessage({ pid: sandbox.pid, env: sandbox.env } satisfies HeldSandbox);
    await released;
  } finally {
    await sandbox.dispose();
    port.close();
  }
}
