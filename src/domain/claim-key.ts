/**
 * The claim order of a task on a hub: `offset + Exp(weight)`, an Efraimidis–Spirakis key. Taking
 * a hub's entries in ascending key order is a weighted random order (heavier tasks tend to come
 * first), and because the exponential distribution is memoryless, an entry added later with the
 * hub's smallest remaining key as `offset` competes fairly with the entries already there.
 * Entries of weight 0 are never claimed; their key is the offset.
 */
export function claimKey(weight: number, offset: number, random: () => number = Math.random): number {
  if (!(weight > 0)) return offset;
  return offset - Math.log(1 - random()) / weight;
}
