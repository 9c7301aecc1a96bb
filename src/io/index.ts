export { SafetensorsFile, SafetensorsError, loadSafetensors, saveSafetensors, parseHeader, SAFETENSORS_DTYPES, MAX_HEADER_BYTES } from "./safetensors.js";
export type { TensorInfo, SafetensorsHeader } from "./safetensors.js";
export { saveCheckpoint, readCheckpoint, WEIGHTS_NAME, WEIGHTS_INDEX_NAME, DEFAULT_MAX_SHARD_BYTES } from "./checkpoint.js";
export type { Checkpoint, SaveCheckpointOptions } from "./checkpoint.js";
export { writeFileAtomic, writeTextAtomic } from "./atomic.js";
export { parseStrictJson } from "./strict-json.js";
