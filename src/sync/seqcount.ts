/**
 * seqcount_t (include/linux/seqlock.h): a writer makes the count odd while it changes the data
 * it guards; a reader retries if the count was odd or changed. Writers serialise on a lock of
 * their own; readers never block.
 */
export function write_seqcount_begin(i32: Int32Array, s: number): void {
  Atomics.add(i32, s, 1);
}

export function write_seqcount_end(i32: Int32Array, s: number): void {
  Atomics.add(i32, s, 1);
}

/** Returns the count to pass to read_seqcount_retry; odd means a writer is inside (retry). */
export function read_seqcount_begin(i32: Int32Array, s: number): number {
  return Atomics.load(i32, s);
}

export function read_seqcount_retry(i32: Int32Array, s: number, start: number): boolean {
  return (start & 1) !== 0 || Atomics.load(i32, s) !== start;
}
