import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { freePort } from '../src';

/** Ports for the processes tests start are taken below the ephemeral range, which outgoing connections draw from. */
describe('freePort', () => {
  it('when asked for ports, then each is below the kernel\'s ephemeral range and a server can listen on it at once', async () => {
    const ephemeralStart = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    for (let i = 0; i < 5; i++) {
      const port = await freePort();
      expect(port).toBeGreaterThanOrEqual(20_000);
      expect(port).toBeLessThan(ephemeralStart);
      const server = createServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '0.0.0.0', resolve);
      });
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
