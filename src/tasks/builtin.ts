// Registers the built-in fine-tuning tasks: one line per task file.
import { registerTask } from "./registry.js";
import { classification } from "./classification.js";

for (const task of [classification]) registerTask(task as never);
