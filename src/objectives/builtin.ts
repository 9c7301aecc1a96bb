// Registers the built-in pretraining objectives: one line per objective file.
import { registerObjective } from "./registry.js";
import * as mlm from "./mlm.js";
import * as clm from "./clm.js";
import * as electra from "./electra.js";
import * as spanCorruption from "./span-corruption.js";
import * as clip from "./clip.js";

for (const file of [mlm, clm, electra, spanCorruption, clip]) for (const entry of file.objectives) registerObjective(entry);
