/** The torture worker entry (dist/torture.mjs): one lock-torture thread per piscina task. */
export { default } from '../src/sync/locktorture.js';
