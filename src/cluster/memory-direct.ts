import type { DirectMail, QueuedDirect } from '../core/direct.js';

/**
 * Room-less delivery in one process. The hub hands local recipients their messages itself,
 * so whatever reaches the cluster is for an id connected nowhere: it waits here.
 */
export class MemoryDirectMail implements DirectMail {
  private readonly waiting = new Map<string, QueuedDirect[]>();

  async post(to: string, queued: QueuedDirect, _ttlMs: number, max: number): Promise<'queued' | 'full'> {
    let queue = this.waiting.get(to);
    if (!queue) this.waiting.set(to, (queue = []));
    if (queue.length >= max) return 'full';
    queue.push(queued);
    return 'queued';
  }

  async collect(to: string): Promise<QueuedDirect[]> {
    const queue = this.waiting.get(to) ?? [];
    this.waiting.delete(to);
    return queue;
  }

  async expire(to: string, from: string): Promise<number> {
    const queue = this.waiting.get(to);
    if (!queue) return 0;
    const kept = queue.filter((q) => q.from !== from);
    if (kept.length > 0) this.waiting.set(to, kept);
    else this.waiting.delete(to);
    return queue.length - kept.length;
  }
}
