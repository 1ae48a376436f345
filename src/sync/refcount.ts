/**
 * refcount_t (include/linux/refcount.h): increments from zero and decrements below zero are
 * bugs; Linux saturates and warns, ptlab reports them (the caller turns the result into a
 * use-after-free violation) and leaves the count where it was.
 */
export const REFCOUNT_OK = 0;
export const REFCOUNT_ZERO = 1; // inc on a freed object / dec that reached zero
export const REFCOUNT_UNDERFLOW = 2;

/** refcount_inc_not_zero: false when the object is already on its way out. */
export function refcount_inc_not_zero(i32: Int32Array, w: number): boolean {
  for (;;) {
    const v = Atomics.load(i32, w);
    if (v <= 0) return false;
    if (Atomics.compareExchange(i32, w, v, v + 1) === v) return true;
  }
}

export function refcount_inc(i32: Int32Array, w: number): number {
  return refcount_inc_not_zero(i32, w) ? REFCOUNT_OK : REFCOUNT_ZERO;
}

/** refcount_dec_and_test: REFCOUNT_ZERO when this dropped the last reference. */
export function refcount_dec_and_test(i32: Int32Array, w: number): number {
  for (;;) {
    const v = Atomics.load(i32, w);
    if (v <= 0) return REFCOUNT_UNDERFLOW;
    if (Atomics.compareExchange(i32, w, v, v - 1) === v) return v === 1 ? REFCOUNT_ZERO : REFCOUNT_OK;
  }
}
