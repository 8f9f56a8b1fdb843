import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** the lowest port a listener picked here may get */
const LOWEST = 20_000;

/**
 * A port nothing listens on, for a process started next to listen on (a service, a test broker). Taken BELOW the
 * kernel's ephemeral range: a port from listen(0) is an ephemeral one, which any outgoing connection (to Postgres,
 * Kafka, a fake) may take as its local port between this check and the process's own listen — CI saw a service die of
 * EADDRINUSE that way. Checked on 0.0.0.0, the address the services listen on.
 */
export async function freePort(): Promise<number> {
  const below = ephemeralRangeStart();
  if (below - LOWEST < 1_000) return ephemeralPort(); // an unusual kernel setting: no room below the range
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = randomInt(LOWEST, below);
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port found between ${LOWEST} and ${below}`);
}

function ephemeralRangeStart(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low && Number.isInteger(low)) return low;
  } catch {
    /* not Linux: the IANA range's start */
  }
  return 49_152;
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '0.0.0.0', () => server.close(() => resolve(true)));
  });
}

function ephemeralPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '0.0.0.0', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
