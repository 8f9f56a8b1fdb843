import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo, Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import { callHttp, classifyError, freePort } from '../src';

/** The services' outbound HTTP client against real local servers: what callers rely on (see outbound-http.ts). */
describe('callHttp', () => {
  let server: Server;
  let base: string;
  let connections: number;
  const requests: IncomingMessage[] = [];
  let handle: (req: IncomingMessage, res: ServerResponse, body: string) => void;

  beforeEach(async () => {
    connections = 0;
    requests.length = 0;
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        requests.push(req);
        handle(req, res, Buffer.concat(chunks).toString('utf8'));
      });
    });
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('when called one after another, then the calls share one kept-alive connection and each gets its own whole answer', async () => {
    handle = (req, res, body) => res.setHeader('content-type', 'application/json').end(JSON.stringify({ method: req.method, path: req.url, body }));
    const answers = [];
    for (let i = 0; i < 5; i++) {
      answers.push(await callHttp(`${base}/orders/${i}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ i }), timeoutMs: 5_000 }));
    }
    expect(answers.map((a) => [a.status, a.ok, JSON.parse(a.text)])).toEqual(
      [0, 1, 2, 3, 4].map((i) => [200, true, { method: 'POST', path: `/orders/${i}`, body: JSON.stringify({ i }) }]),
    );
    expect(connections).toBe(1);
    expect(requests[0]!.headers['content-length']).toBe(String(JSON.stringify({ i: 0 }).length));
  });

  it('when the body is form parameters, then they are sent encoded with their length; non-2xx answers resolve with their status and headers', async () => {
    handle = (_req, res, body) => {
      res.setHeader('location', '/elsewhere');
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.statusCode = 302;
      res.end(body);
    };
    const answer = await callHttp(`${base}/gateway`, { method: 'POST', body: new URLSearchParams({ method: 'x.y', note: 'a b&c' }), timeoutMs: 5_000 });
    expect(answer).toMatchObject({ status: 302, ok: false, text: 'method=x.y&note=a+b%26c' });
    expect(requests[0]!.headers['content-type']).toBe('application/x-www-form-urlencoded;charset=UTF-8');
    // a redirect is returned, not followed
    expect(requests).toHaveLength(1);
    expect(answer.header('Location')).toBe('/elsewhere');
    expect(answer.header('set-cookie')).toBe('a=1, b=2');
    expect(answer.header('x-missing')).toBeUndefined();
  });

  it('when the server compresses although nobody asked, then the answer is decoded; the request never asks for compression', async () => {
    handle = (_req, res) => res.setHeader('content-encoding', 'gzip').end(gzipSync(JSON.stringify({ orderId: 'ab-1' })));
    const answer = await callHttp(`${base}/order`, { timeoutMs: 5_000 });
    expect(JSON.parse(answer.text)).toEqual({ orderId: 'ab-1' });
    expect(requests[0]!.headers['accept-encoding']).toBeUndefined();
  });

  it('when the answer is larger than allowed, then the call fails with ResponseTooLargeError, plain or compressed', async () => {
    const big = 'x'.repeat(10_000);
    handle = (req, res) => (req.url === '/gz' ? res.setHeader('content-encoding', 'gzip').end(gzipSync(big)) : res.end(big));
    await expect(callHttp(`${base}/plain`, { timeoutMs: 5_000, maxResponseBytes: 9_999 })).rejects.toMatchObject({ name: 'ResponseTooLargeError', code: 'RESPONSE_TOO_LARGE' });
    await expect(callHttp(`${base}/gz`, { timeoutMs: 5_000, maxResponseBytes: 9_999 })).rejects.toMatchObject({ name: 'ResponseTooLargeError' });
    await expect(callHttp(`${base}/plain`, { timeoutMs: 5_000, maxResponseBytes: 10_000 })).resolves.toMatchObject({ text: big });
  });

  it('when the server answers the headers but never the whole body, then the call fails with a TimeoutError at its deadline', async () => {
    const open: ServerResponse[] = [];
    handle = (_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
      open.push(res);
    };
    const started = Date.now();
    await expect(callHttp(`${base}/slow`, { timeoutMs: 300 })).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(open).toHaveLength(1);
  });

  it('when the answer comes later than an idle connection would be kept, then the call still waits for it until its own deadline', async () => {
    handle = (_req, res) => {
      setTimeout(() => res.end('late answer'), 4_500); // the agent closes idle sockets after 4 s; this one is busy
    };
    await expect(callHttp(`${base}/slow`, { method: 'POST', body: 'x', timeoutMs: 10_000 })).resolves.toMatchObject({ status: 200, text: 'late answer' });
  });

  it('when a kept-alive connection is reset as it is reused, then a GET goes again once on a new connection and a POST is not repeated', async () => {
    // the server serves one request per connection, then drops the connection when a second arrives on it: what a
    // client meets when the server closes an idle connection just as the client reuses it
    const served = new WeakMap<Socket, number>();
    handle = (req, res) => {
      const socket = req.socket as Socket;
      const count = (served.get(socket) ?? 0) + 1;
      served.set(socket, count);
      if (count > 1) socket.destroy();
      else res.end(`answer ${requests.length}`);
    };
    expect((await callHttp(`${base}/order`, { timeoutMs: 5_000 })).text).toBe('answer 1');
    await expect(callHttp(`${base}/order`, { timeoutMs: 5_000 })).resolves.toMatchObject({ status: 200, text: 'answer 3' });
    expect(requests).toHaveLength(3); // the first, the one dropped, the one sent again
    expect(connections).toBe(2);

    await expect(callHttp(`${base}/order`, { method: 'POST', body: '{}', timeoutMs: 5_000 })).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(requests).toHaveLength(4); // dropped, and not sent again
    expect(requests.map((r) => r.method)).toEqual(['GET', 'GET', 'GET', 'POST']);
  });

  it('when the connection is cut in the middle of the body, then the call fails as a connection failure (transient)', async () => {
    handle = (req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial', () => (req.socket as Socket).destroy());
    };
    const failure = await callHttp(`${base}/cut`, { timeoutMs: 5_000 }).catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: 'ECONNRESET' });
    expect(classifyError(failure).kind).toBe('transient');
  });

  it('when nothing listens, then the call fails with ECONNREFUSED, which the runtime classifies as transient', async () => {
    const port = await freePort();
    const failure = await callHttp(`http://127.0.0.1:${port}/`, { timeoutMs: 5_000 }).catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: 'ECONNREFUSED' });
    expect(classifyError(failure)).toEqual({ kind: 'transient', code: 'CONNECTION_FAILED' });
  });

  it('when an https server presents a certificate nobody vouches for, then the call is refused (TLS is verified)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbound-tls-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
      const tls = createTlsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (_req, res) => res.end('secret'));
      await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
      try {
        await expect(callHttp(`https://127.0.0.1:${(tls.address() as AddressInfo).port}/`, { timeoutMs: 5_000 })).rejects.toMatchObject({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
      } finally {
        tls.closeAllConnections();
        await new Promise((resolve) => tls.close(resolve));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('when the address is not http(s), then the call is refused before any connection', async () => {
    await expect(callHttp('file:///etc/passwd', { timeoutMs: 1_000 })).rejects.toThrow('unsupported protocol file:');
  });
});
