// A tokenising worker thread: loads the tokenizer from its files once, then answers each
// chunk of documents { id, docs } with its tokens { id, ids, flags, docLengths }, the
// buffers transferred (not copied). The parent writes chunks in id order.
import { parentPort, workerData } from "node:worker_threads";
import { loadTokenizer } from "../tokenizers/index.js";
import { tokenizeDocuments } from "./doc-tokens.js";

const tok = loadTokenizer((workerData as { tokenizer: string }).tokenizer);
const port = parentPort!;
port.on("message", (msg: { id: number; docs: string[] }) => {
  try {
    const r = tokenizeDocuments(msg.docs, tok);
    port.postMessage({ id: msg.id, ...r }, [r.ids.buffer as ArrayBuffer, r.flags.buffer as ArrayBuffer, r.docLengths.buffer as ArrayBuffer]);
  } catch (e) {
    port.postMessage({ id: msg.id, error: (e as Error).message });
  }
});
