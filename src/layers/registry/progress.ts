/**
 * The pull's display on a terminal: one line per layer (docker pull's
 * form), redrawn in place at most every 100 ms. Not a terminal: nothing
 * (the command prints its result lines at the end). Lines are cut to the
 * terminal's width so that each frame takes as many rows as it has lines.
 */

export type LayerState = 'waiting' | 'exists' | 'downloading' | 'resuming' | 'downloaded' | 'extracted' | 'failed';

export interface PullProgress {
  /** The image's layers are known: their digests and sizes, bottom first. */
  start(layers: readonly { digest: string; size: number }[]): void;
  update(index: number, state: LayerState, bytes?: number): void;
  /** The pull ended (either way): the last frame stays on screen. */
  end(): void;
}

export const silentProgress: PullProgress = { start() {}, update() {}, end() {} };

const REDRAW_MS = 100;

/** 1.2 MB, as docker pull shows it. */
function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB'];
  let value = bytes;
  let unit = 0;
  for (; value >= 1000 && unit < units.length - 1; unit++) value /= 1000;
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): PullProgress {
  // Back up over the previous frame and clear to the end of the screen (ECMA-48 CUU, ED), then the new frame.
  let height = 0;
  const draw = (frame: string) => {
    const width = Math.max(20, (stream.columns || 80) - 1);
    const lines = frame.split('\n').map((line) => line.slice(0, width));
    stream.write(`${height ? `\r\x1b[${height}A` : ''}\x1b[J${lines.join('\n')}\n`);
    height = lines.length;
  };
  let layers: { digest: string; size: number; state: LayerState; bytes: number }[] = [];
  let drawn = 0;
  const render = (force = false) => {
    if (!force && Date.now() - drawn < REDRAW_MS) return;
    drawn = Date.now();
    const lines = layers.map(({ digest, size, state, bytes }) => {
      const id = digest.slice('sha256:'.length, 'sha256:'.length + 12);
      const amount = state === 'downloading' || state === 'resuming' ? ` ${humanSize(bytes)} / ${humanSize(size)}` : ` ${humanSize(size)}`;
      return `${id}: ${state}${state === 'exists' ? ' in the store' : amount}`;
    });
    const total = layers.reduce((sum, l) => sum + l.size, 0);
    const got = layers.reduce((sum, l) => sum + (l.state === 'exists' ? l.size : l.bytes), 0);
    draw([...lines, `${humanSize(got)} / ${humanSize(total)}`].join('\n'));
  };
  return {
    start(list) {
      layers = list.map(({ digest, size }) => ({ digest, size, state: 'waiting', bytes: 0 }));
      render(true);
    },
    update(index, state, bytes) {
      const layer = layers[index];
      if (!layer) return;
      layer.state = state;
      if (bytes !== undefined) layer.bytes = bytes;
      render(state !== 'downloading');
    },
    end() {
      render(true);
    },
  };
}
