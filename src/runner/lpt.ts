/** What an item is predicted to take, in ms. */
export interface Weighted {
  item: string;
  ms: number;
}

export interface Bin {
  items: string[];
  /** Predicted time: the sum of its items' predictions. */
  ms: number;
}

/**
 * Longest-processing-time bin packing: items sorted longest first (name
 * order on ties) each go to the bin with the least predicted time so far
 * (the lowest index on ties). No randomness and no dependence on input
 * order, so every machine computes the same split from the same timings.
 */
export function lptSplit(items: readonly Weighted[], count: number): Bin[] {
  const bins: Bin[] = Array.from({ length: count }, () => ({ items: [], ms: 0 }));
  const sorted = [...items].sort((a, b) => b.ms - a.ms || (a.item < b.item ? -1 : a.item > b.item ? 1 : 0));
  for (const { item, ms } of sorted) {
    let best = 0;
    for (let i = 1; i < count; i++) if (bins[i]!.ms < bins[best]!.ms) best = i;
    bins[best]!.items.push(item);
    bins[best]!.ms += ms;
  }
  return bins;
}

/**
 * Predictions for items, unknown ones estimated as the mean of the known
 * (a new test file is assumed typical); undefined when nothing is known,
 * so the caller keeps the count-based split.
 */
export function predict(items: readonly string[], timings: ReadonlyMap<string, number>): Weighted[] | undefined {
  const known = items.map((item) => timings.get(item)).filter((ms): ms is number => ms !== undefined);
  if (known.length === 0) return undefined;
  const mean = known.reduce((a, b) => a + b, 0) / known.length;
  return items.map((item) => ({ item, ms: timings.get(item) ?? mean }));
}
