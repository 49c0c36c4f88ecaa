/** How to tell that a service is ready. */
export type ReadinessProbe =
  /** Something listens on this TCP port inside the sandbox. */
  | { tcp: number }
  /** This unix socket exists inside the sandbox. */
  | { socket: string }
  /** This command, run inside the sandbox, exits 0. */
  | { command: readonly string[] }
  /** The service's log has a line matching this. */
  | { log: RegExp | string };

/** A long-running process started in a sandbox before the command, e.g. a database. */
export interface ServiceSpec {
  /** Short name, used in messages and for the log file. */
  name: string;
  command: readonly string[];
  env?: Readonly<Record<string, string>>;
  /** Working directory inside the sandbox (default: the sandbox's; with `root`, the image's WorkingDir). */
  cwd?: string;
  /**
   * Run the service on an image mounted in the sandbox (`images: [{ ref, at }]`,
   * or a preset's `PresetParts.images`): it chroots into `at`, gets the
   * image's Env and a passwd entry, and listens on the sandbox's own
   * localhost. `command` and a `command` probe are looked up in the image;
   * `socket` probe paths are the sandbox's (under /tmp: the same inside).
   * The image needs /bin/sh (it sets up the service's log).
   */
  root?: string;
  /** Default: ready once started. */
  ready?: ReadinessProbe;
  /**
   * A log line that means it runs, but not as asked (the loader skipped a
   * preloaded library): once ready, a match fails its start with that line.
   */
  failOnLog?: RegExp | string;
  /** How long it may take to become ready (default 30 s). */
  startTimeoutMs?: number;
  /** Signal for an orderly stop (default SIGTERM); SIGKILL follows after `stopGraceMs` (default 5 s). */
  stopSignal?: NodeJS.Signals;
  stopGraceMs?: number;
  /** Variables the service offers to everything else in the sandbox (e.g. DATABASE_URL). */
  exports?: Readonly<Record<string, string>>;
}
