/** Types for `cluster-key-slot` (ioredis' own slot function; it ships none). */
declare module 'cluster-key-slot' {
  /** The Redis Cluster hash slot (0..16383) of a key, honouring `{hash tags}`. */
  function calculateSlot(key: string): number;
  export default calculateSlot;
}
