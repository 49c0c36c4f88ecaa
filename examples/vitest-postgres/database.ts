// The shop database of examples/postgres (same schema and seed files, same
// cached cluster), as a postgres() preset. PG_SEED_FILLER_MB (benchmarks)
// adds an untouched table of about that size, to make cloning it realistic.
import { fileURLToPath } from 'node:url';
import { postgres } from '../../dist/index.js';

const file = (name: string) => fileURLToPath(new URL(name, import.meta.url));
const fillerMb = Number(process.env.PG_SEED_FILLER_MB ?? 0);

export const shop = postgres({
  database: 'shop',
  seed: {
    sql: [file('../postgres/db/schema.sql'), file('../postgres/db/seed.sql')],
    ...(fillerMb > 0
      ? { command: `psql -q -c "CREATE TABLE filler AS SELECT n, repeat(md5(n::text), 30) AS pad FROM generate_series(1, ${fillerMb * 1000}) AS n"` }
      : {}),
  },
});
