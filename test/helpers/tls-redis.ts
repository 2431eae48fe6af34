import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RedisOptions } from 'ioredis';
import { waitFor } from './instances.js';
import { freePort } from './redis.js';
import { RedisProcess } from './redis-process.js';

/** Paths of the PEM files `makeCertificates` wrote. */
export interface Certificates {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A CA that signed none of these: trusting it alone must fail verification. */
  otherCa: string;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * A private CA, a server certificate for 127.0.0.1 (IP SAN) and a client certificate, both
 * signed by it, plus an unrelated CA; made with openssl in a temp dir (2048-bit RSA, 1 day).
 */
export function makeCertificates(): Certificates {
  const dir = mkdtempSync(join(tmpdir(), 'herald-tls-'));
  const ca = (name: string) => {
    openssl(dir, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.pem`);
  };
  ca('test-ca');
  ca('other-ca');
  const leaf = (name: string, ext: string) => {
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(dir, 'req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
    openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', 'test-ca.pem', '-CAkey', 'test-ca.key', '-CAcreateserial', '-days', '1', '-extfile', `${name}.ext`, '-out', `${name}.pem`);
  };
  leaf('server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  leaf('client', 'extendedKeyUsage=clientAuth\n');
  const p = (f: string) => join(dir, f);
  return {
    dir,
    ca: p('test-ca.pem'),
    serverCert: p('server.pem'),
    serverKey: p('server.key'),
    clientCert: p('client.pem'),
    clientKey: p('client.key'),
    otherCa: p('other-ca.pem'),
  };
}

export function removeCertificates(certs: Certificates): void {
  rmSync(certs.dir, { recursive: true, force: true });
}

/** ioredis TLS options that trust the test CA and present the client certificate. */
export function clientTls(certs: Certificates): NonNullable<RedisOptions['tls']> {
  return { ca: readFileSync(certs.ca), cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey) };
}

/** The redis-server arguments that serve TLS only on `tlsPort` and ask clients for a certificate. */
export function tlsServerArgs(certs: Certificates, tlsPort: number): string[] {
  return [
    '--port', '0', '--tls-port', String(tlsPort),
    '--tls-cert-file', certs.serverCert, '--tls-key-file', certs.serverKey, '--tls-ca-cert-file', certs.ca,
    '--tls-auth-clients', 'yes',
  ];
}

/** A TLS-only `redis-server` (no plain port) that requires client certificates; no persistence. */
export async function startTlsRedis(certs: Certificates): Promise<RedisProcess> {
  const port = await freePort();
  const node = new RedisProcess(
    port,
    () => ['--bind', '127.0.0.1', '--protected-mode', 'no', '--save', '', '--appendonly', 'no', '--loglevel', 'warning', ...tlsServerArgs(certs, port)],
    { tls: clientTls(certs) },
  );
  await node.start();
  return node;
}

/**
 * A Redis Cluster of three TLS-only masters (`tls-cluster yes`: the cluster bus and the
 * addresses it hands out are TLS too), created with `redis-cli --tls --cluster create`.
 */
export async function startTlsCluster(certs: Certificates): Promise<RedisProcess[]> {
  const dir = mkdtempSync(join(certs.dir, 'cluster-'));
  const nodes: RedisProcess[] = [];
  for (let i = 0; i < 3; i++) {
    const [port, bus] = [await freePort(), await freePort()];
    nodes.push(
      new RedisProcess(
        port,
        () => [
          '--bind', '127.0.0.1', '--protected-mode', 'no', '--save', '', '--appendonly', 'no', '--loglevel', 'warning', '--dir', dir,
          ...tlsServerArgs(certs, port), '--tls-cluster', 'yes',
          '--cluster-enabled', 'yes', '--cluster-port', String(bus), '--cluster-config-file', join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout', '2000', '--cluster-require-full-coverage', 'no',
        ],
        { tls: clientTls(certs) },
      ),
    );
  }
  try {
    await Promise.all(nodes.map((n) => n.start()));
    execFileSync('redis-cli', [
      '--tls', '--cacert', certs.ca, '--cert', certs.clientCert, '--key', certs.clientKey,
      '--cluster', 'create', ...nodes.map((n) => n.address), '--cluster-replicas', '0', '--cluster-yes',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    await waitFor('the TLS redis cluster to be ok', async () => {
      for (const n of nodes) {
        const info = String(await n.call('CLUSTER', 'INFO').catch(() => ''));
        if (!info.includes('cluster_state:ok') || !info.includes('cluster_slots_assigned:16384')) return false;
      }
      return true;
    }, 30_000, 100);
  } catch (err) {
    await Promise.all(nodes.map((n) => n.kill()));
    throw err;
  }
  return nodes;
}
