// Database servers the preset tests need from the host: a missing one skips
// its tests, saying what to install, unless SANDBOX_RUN_REQUIRE_SERVERS=1
// (.ci/run, which installs them) makes it a failure.
import type { TestContext } from 'vitest';

/** Skips the test when `find` throws (its message says what to install), or fails it when CI requires the server. */
export function needServer(ctx: TestContext, find: () => unknown): void {
  try {
    find();
  } catch (error) {
    const why = (error as Error).message;
    if (process.env.SANDBOX_RUN_REQUIRE_SERVERS === '1') throw new Error(`SANDBOX_RUN_REQUIRE_SERVERS=1 but ${why}`);
    ctx.skip(`skipped: ${why}`);
  }
}
