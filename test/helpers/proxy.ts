import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy the test can turn into a black hole for the connections it already carries
 * (no FIN, no RST: bytes just stop), as a network that dies silently would. New connections
 * go to `target`, which a test may change (a reconnect landing on another instance).
 */
export class BlackHoleProxy {
  private readonly pairs = new Set<[Socket, Socket]>();
  private readonly sockets = new Set<Socket>();
  private server!: Server;
  /** Partitioned: pairs silenced by `partition()` and sockets accepted meanwhile, both held. */
  private silenced: [Socket, Socket][] | undefined;
  private heldNew: Socket[] = [];
  port = 0;
  /** Where new connections go. */
  target = 0;

  static async start(target: number): Promise<BlackHoleProxy> {
    const proxy = new BlackHoleProxy();
    proxy.target = target;
    proxy.server = createServer((client) => {
      proxy.sockets.add(client);
      if (proxy.silenced) {
        // A partition: the connection is accepted (as a middlebox would) but nothing passes.
        client.pause();
        client.on('error', () => {});
        proxy.heldNew.push(client);
        return;
      }
      const upstream = connect(proxy.target, '127.0.0.1');
      const pair: [Socket, Socket] = [client, upstream];
      proxy.sockets.add(client).add(upstream);
      proxy.pairs.add(pair);
      client.pipe(upstream).pipe(client);
      const drop = () => {
        proxy.pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
    });
    await new Promise<void>((r) => proxy.server.listen(0, '127.0.0.1', r));
    proxy.port = (proxy.server.address() as { port: number }).port;
    return proxy;
  }

  /** Every connection open now stops carrying bytes either way, and nothing is closed. */
  blackHole(): number {
    for (const [client, upstream] of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
    const n = this.pairs.size;
    this.pairs.clear();
    return n;
  }

  /**
   * A partition that heals: every connection open now stops carrying bytes (nothing is
   * closed), and new connections are accepted but carry nothing either, until `heal()`.
   */
  partition(): void {
    this.silenced = [...this.pairs];
    for (const [client, upstream] of this.silenced) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  }

  /** The network is back: held connections carry bytes again; new ones are forwarded. */
  heal(): void {
    for (const [client, upstream] of this.silenced ?? []) {
      client.pipe(upstream).pipe(client);
      client.resume();
      upstream.resume();
    }
    this.silenced = undefined;
    // Connections attempted during the partition have been given up on by their clients.
    for (const socket of this.heldNew.splice(0)) socket.destroy();
  }

  stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}
