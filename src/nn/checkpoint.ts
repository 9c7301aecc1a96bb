// Gradient (activation) checkpointing, per transformer layer (Chen et al. 2016, "Training
// deep nets with sublinear memory cost"; PyTorch's torch.utils.checkpoint).
//
// The forward keeps only each layer's input (B, T, C) and the CPU generator's state before
// it; each layer runs as in training, and its graph is dropped as soon as its output is out
// (detached). Not under no-grad: that would take the inference kernels, which keep a
// transposed copy of every weight they see (native/linear.cc: a second copy of the layers'
// weights, made again after each optimizer step) and compute in another order than the
// recomputation does. The last output becomes a fresh leaf that the head reads. The model's own backward (loss.backward()) stops at that leaf. Right after it
// (Tensor.backward's after-backward hook), the layers' backward runs here, top layer first:
// restore the layer's generator state (the same dropout masks), recompute its forward with
// gradient from its saved input, back-propagate the incoming gradient through it, and pass
// the input's gradient to the layer below; the embeddings' graph gets the last one.
//
// Why not a custom autograd function whose backward calls back into JavaScript (the other
// way, and PyTorch's): the autograd engine runs backward functions on its own worker threads
// for CUDA tensors, where calling into V8 needs a thread-safe function, and the main thread
// is blocked inside the very backward call that would have to serve it: a deadlock. The
// addon's existing autograd hooks (native/reducer.cc) stay on the native side for that
// reason. Driving the layers' backward from JavaScript, between libtorch backward passes,
// needs only what the addon has (backward with a gradient, .grad of a leaf) and runs on the
// main thread. The cost: torch.autograd.grad() does not go through checkpointed layers
// (only backward() does), and gradients reach the layers after the head's, not interleaved.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import type { Module } from "./module.js";

/** One checkpointed stack of layers, waiting for the gradient of its output. */
interface Tape {
  /** The stack's input with its graph (embeddings), or null if nothing below needs a gradient. */
  root: Tensor | null;
  /**
   * The stack's output as a leaf, our own handle on it (kept): the head's backward leaves its
   * gradient here. The caller gets a second handle (share()), which its scope may free before
   * the backward (the Trainer frees the logits and every other handle of the objective's
   * forward before it): the graph still reaches the leaf.
   */
  leaf: Tensor;
  /** Layer i's input, detached (B, T, C). */
  inputs: Tensor[];
  /** The generator's state before layer i. */
  rng: Buffer[];
  /** The other tensors the layers read (masks, rotary tables), detached. */
  consts: (Tensor | null)[];
  layer: CheckpointedLayer;
}

/** Layer i of a stack: its output from its input x and the stack's constant tensors. */
export type CheckpointedLayer = (i: number, x: Tensor, consts: readonly (Tensor | null)[]) => Tensor;

const enabled = new WeakSet<Module>();
/** Modules whose layer loop has checkpointed at least once. */
const used = new WeakSet<Module>();
const tapes: Tape[] = [];
let draining = false;

/**
 * Turns gradient checkpointing on (or off) for a model and all its modules (Hugging Face's
 * gradient_checkpointing_enable()). It acts in training with gradient recording on only.
 */
export function setGradientCheckpointing(model: Module, on = true): void {
  for (const [, m] of model.namedModules()) {
    if (on) enabled.add(m);
    else enabled.delete(m);
  }
}

/** Whether a layer loop in module m should checkpoint its layers now. */
export function checkpointingActive(m: Module): boolean {
  const active = enabled.has(m) && m.training && torch.isGradEnabled();
  if (active) used.add(m);
  return active;
}

/**
 * Throws unless a layer loop of the model has checkpointed: a model family without the hook
 * (T5, the --arch variants, vision) would otherwise train without it, silently.
 */
export function requireCheckpointed(model: Module, where: string): void {
  if (used.has(model)) return;
  for (const [, m] of model.namedModules()) {
    if (used.has(m)) {
      used.add(model); // found once: the next call returns at once
      return;
    }
  }
  throw new Error(`${where}: this model's layers ran without checkpointing; it is implemented for BERT, RoBERTa, ELECTRA, ALBERT, GPT-2 and Llama (and not with hidden states, attentions or a key/value cache asked for)`);
}

/** How many checkpointed stacks wait for their backward (for tests and leak hunting). */
export function pendingCheckpoints(): number {
  return tapes.length;
}

/**
 * Runs `count` layers on x with checkpointing: layer(i, h, consts) gives layer i's output
 * from its input h. Returns the last output as a leaf whose gradient the next backward()
 * carries down through the layers (recomputed one at a time) into x's graph.
 *
 * The layers must read no tensor that needs a gradient other than x and their parameters
 * (pass masks and tables in consts: they are kept until the backward, even if the caller's
 * scope frees its own handles).
 */
export function checkpointLayers(count: number, x: Tensor, consts: readonly (Tensor | null)[], layer: CheckpointedLayer): Tensor {
  if (x.device !== "cpu") {
    throw new Error(`gradient checkpointing: the input is on ${x.device}; only the CPU generator's state is saved, so dropout masks on other devices would not repeat`);
  }
  if (count < 1) return x;
  dropStale();
  const kept = consts.map((c) => (c ? torch.keep(c.detach()) : null));
  const inputs: Tensor[] = [];
  const rng: Buffer[] = [];
  let h = x;
  for (let i = 0; i < count; i++) {
    rng.push(torch.getRngState());
    const input = torch.keep(h.detach());
    inputs.push(input);
    // the training kernels, the layer's graph freed with the scope: only the output's data leaves
    h = torch.scope(() => layer(i, input, kept).detach());
  }
  const leaf = torch.keep(h.requiresGrad_(true));
  // a new handle on x with its graph (a view), ours to free, whatever the caller's scope does
  const root = x.requiresGrad ? torch.keep(x.view([...x.shape])) : null;
  tapes.push({ root, leaf, inputs, rng, consts: kept, layer });
  return leaf.share();
}

/**
 * Whether nothing can send the stack's output a gradient any more: no handle but ours and no
 * graph reaches it (a skipped step, a forward whose outputs were freed without a backward).
 */
function orphaned(tape: Tape): boolean {
  if (tape.leaf.useCount !== 1) return false;
  const g = tape.leaf.grad;
  g?.dispose();
  return g === undefined;
}

/** Frees the stacks that no backward can reach any more. */
function dropStale(): void {
  for (let i = tapes.length - 1; i >= 0; i--) {
    const tape = tapes[i]!;
    if (orphaned(tape)) {
      tapes.splice(i, 1);
      release(tape);
    }
  }
}

function release(tape: Tape): void {
  torch.dispose([tape.leaf, tape.root, tape.inputs, tape.consts]);
}

/**
 * After a backward: each stack whose output got a gradient, the latest first (a stack's
 * output may feed a later stack, as an encoder's feeds a decoder's cross-attention), is
 * back-propagated through. The recomputations' own backward() calls come back here and
 * return at once (draining).
 */
function drain(): void {
  if (draining) return;
  draining = true;
  try {
    for (let i = tapes.length - 1; i >= 0; i--) {
      const tape = tapes[i]!;
      const g = tape.leaf.grad;
      if (g === undefined && orphaned(tape)) {
        tapes.splice(i, 1);
        release(tape);
        continue;
      }
      if (g === undefined) continue;
      tapes.splice(i, 1);
      try {
        backwardThrough(tape, g);
      } finally {
        release(tape);
        g.dispose();
      }
    }
  } finally {
    draining = false;
  }
}

/** The backward through one stack, top layer first, from the gradient of its output. */
function backwardThrough(tape: Tape, outputGrad: Tensor): void {
  const after = torch.getRngState(); // the recomputation's draws must not move the run's generator
  try {
    torch.scope(() => {
      let g = outputGrad;
      for (let i = tape.inputs.length - 1; i >= 0; i--) {
        const incoming = g;
        g = torch.scope(() => {
          torch.setRngState(tape.rng[i]!);
          const x = tape.inputs[i]!.detach().requiresGrad_(true);
          const y = torch.enableGrad(() => tape.layer(i, x, tape.consts));
          y.backward(incoming);
          const gx = x.grad;
          if (gx === undefined) throw new Error(`gradient checkpointing: layer ${i}'s output does not depend on its input`);
          return gx;
        });
      }
      tape.root?.backward(g);
    });
  } finally {
    torch.setRngState(after);
  }
}

torch.onAfterBackward(drain);
