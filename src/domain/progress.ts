/** A progress note is at most this many characters; a compute service cuts longer ones. */
export const maxProgressMessageChars = 1000;

/** A task's progress as a compute service reports it: a fraction in [0, 1], a note, or both. */
export interface Progress {
  readonly fraction?: number;
  readonly message?: string;
}

const clamp = (x: number) => Math.min(1, Math.max(0, x));

/**
 * What `context.progress(...)` means: `(fraction, note?)`, `(done, total, note?)` or `(note)`. A
 * note alone keeps the previous fraction; a fraction that is not a finite number is ignored.
 */
export function progressFrom(
  previous: Progress | undefined,
  first: number | string,
  second?: number | string,
  note?: string,
): Progress {
  let fraction = previous?.fraction;
  let message: string | undefined;
  if (typeof first === 'string') message = first;
  else if (typeof second === 'number') {
    if (Number.isFinite(first) && Number.isFinite(second) && second > 0) fraction = clamp(first / second);
    message = note;
  } else {
    if (Number.isFinite(first)) fraction = clamp(first);
    message = second;
  }
  if (message !== undefined) message = String(message).slice(0, maxProgressMessageChars);
  return {
    ...(fraction !== undefined ? { fraction } : {}),
    ...(message !== undefined ? { message } : {}),
  };
}
