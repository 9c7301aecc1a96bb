// Registers the built-in fine-tuning tasks: one line per task file.
import { registerTask } from "./registry.js";
import { classification } from "./classification.js";
import { tokenClassification } from "./token-classification.js";
import { questionAnswering } from "./question-answering.js";
import { summarization, translation } from "./seq2seq.js";
import { imageClassification } from "./image-classification.js";
import { setfit } from "./setfit.js";
import { promptClassification } from "./prompt-classification.js";

for (const task of [classification, tokenClassification, questionAnswering, translation, summarization, imageClassification, promptClassification, setfit]) registerTask(task as never);
