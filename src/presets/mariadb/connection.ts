export interface ConnectionPlan {
  user: string;
  password: string | undefined;
  database: string;
  port: number;
  /** The server's socket, in a host directory bound at the same path: it works inside and from the host. */
  socket: string;
  omit?: readonly string[];
}

/**
 * The variables a sandbox gets. TCP to 127.0.0.1 (not "localhost": MySQL
 * clients take that to mean the socket) of the sandbox's own loopback, so
 * inside only; MYSQL_UNIX_PORT, which the mysql/mariadb clients read, is
 * the socket, reachable from the host too. MYSQL_TCP_PORT and MYSQL_PWD are
 * the clients' own names for the port and the password.
 */
export function mariadbEnv(plan: ConnectionPlan): Record<string, string> {
  const { user, password, database, port, socket } = plan;
  const auth = `${encodeURIComponent(user)}${password !== undefined ? `:${encodeURIComponent(password)}` : ''}`;
  const env: Record<string, string> = {
    DATABASE_URL: `mysql://${auth}@127.0.0.1:${port}/${database}`,
    MYSQL_HOST: '127.0.0.1',
    MYSQL_PORT: String(port),
    MYSQL_TCP_PORT: String(port),
    MYSQL_UNIX_PORT: socket,
    MYSQL_USER: user,
    ...(password !== undefined ? { MYSQL_PASSWORD: password, MYSQL_PWD: password } : {}),
    MYSQL_DATABASE: database,
  };
  for (const name of plan.omit ?? []) delete env[name];
  return env;
}
