// Random state: seeding and saving/restoring the generator, so that a resumed run draws the
// very same numbers.
import { native } from "./native.js";

/** Seeds the CPU generator (and every CUDA device's, where present). */
export function manualSeed(seed: number | bigint): void {
  native.manualSeed(seed);
}

/** The CPU generator's complete state, as bytes to store in a checkpoint. */
export function getRngState(): Buffer {
  return native.getRngState();
}

/** Restores a state from getRngState(): the next draws repeat those that followed it. */
export function setRngState(state: Uint8Array): void {
  native.setRngState(state);
}
