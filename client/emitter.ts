/** A tiny typed event emitter: `on` returns an unsubscribe function. */
export class Emitter<Events extends object> {
  private readonly handlers = new Map<keyof Events, Set<(value: any) => void>>();

  on<K extends keyof Events>(type: K, handler: (value: Events[K]) => void): () => void {
    let set = this.handlers.get(type);
    if (!set) this.handlers.set(type, (set = new Set()));
    set.add(handler);
    return () => set!.delete(handler);
  }

  once<K extends keyof Events>(type: K): Promise<Events[K]> {
    return new Promise((resolve) => {
      const off = this.on(type, (value) => {
        off();
        resolve(value);
      });
    });
  }

  protected emit<K extends keyof Events>(type: K, value: Events[K]): void {
    for (const handler of [...(this.handlers.get(type) ?? [])]) {
      try {
        handler(value);
      } catch (err) {
        console.error(`herald: ${String(type)} handler threw`, err);
      }
    }
  }
}
