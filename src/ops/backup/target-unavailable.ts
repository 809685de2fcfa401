import { AthanorError, isAthanorError } from '../../domain/errors.js';
import type { ObjectInfo, ObjectStore } from '../../objects/object-store.js';

/** A result-store outage at the backup target as `backup_target_unavailable`; others as they are. */
export function asTargetError(error: unknown): unknown {
  if (!isAthanorError(error) || error.code !== 'objects_unavailable') return error;
  return new AthanorError(
    'backup_target_unavailable',
    `the backup target is unavailable: ${error.message}; nothing was published, retry once it answers`,
    { cause: error },
  );
}

async function targetCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw asTargetError(error);
  }
}

/**
 * The target as a backup writer sees it: an object store that cannot be reached fails with
 * `backup_target_unavailable` (naming the target), so it is not mistaken for the result store.
 */
export function backupTargetStore(store: ObjectStore): ObjectStore {
  const putMany = store.putMany?.bind(store);
  const getSmall = store.getSmall?.bind(store);
  return {
    url: store.url,
    put: (key, body, options) => targetCall(() => store.put(key, body, options)),
    ...(putMany ? { putMany: (objects) => targetCall(() => putMany(objects)) } : {}),
    putIfAbsent: (key, body) => targetCall(() => store.putIfAbsent(key, body)),
    get: (key) => targetCall(() => store.get(key)),
    ...(getSmall ? { getSmall: (key, maxBytes) => targetCall(() => getSmall(key, maxBytes)) } : {}),
    head: (key) => targetCall(() => store.head(key)),
    delete: (key) => targetCall(() => store.delete(key)),
    move: (fromKey, toKey) => targetCall(() => store.move(fromKey, toKey)),
    async *list(prefix: string): AsyncIterable<ObjectInfo> {
      try {
        yield* store.list(prefix);
      } catch (error) {
        throw asTargetError(error);
      }
    },
  };
}
