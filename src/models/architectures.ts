// Registers every architecture with the Auto classes: one line per model file.
import { registerArchitecture } from "./registry.js";
import * as bert from "./bert.js";
import * as gpt2 from "./gpt2.js";
import * as roberta from "./roberta.js";
import * as albert from "./albert.js";
import * as electra from "./electra.js";
import * as t5 from "./t5.js";
import * as llama from "./llama.js";
import * as lmforge from "./variants/model.js";
import * as vision from "./vision.js";

for (const m of [bert, gpt2, roberta, albert, electra, t5, llama, lmforge, vision]) registerArchitecture(m.architecture);
