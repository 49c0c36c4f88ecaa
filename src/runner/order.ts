/**
 * Queue order: items with no measured time first (they may be long, and
 * starting them early is what makes the next run's order right), then the
 * rest longest first, so a slow item never starts last and sets the wall
 * time alone. Ties keep name order, so the order is the same on every run.
 */
export function longestFirst(items: readonly string[], timings: ReadonlyMap<string, number>): string[] {
  return [...items].sort((a, b) => {
    const ta = timings.get(a);
    const tb = timings.get(b);
    if (ta === undefined || tb === undefined) return ta === tb ? a.localeCompare(b) : ta === undefined ? -1 : 1;
    return tb - ta || a.localeCompare(b);
  });
}
