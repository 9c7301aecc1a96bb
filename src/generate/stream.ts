// Text as it is generated: tokens arrive one at a time, but a token is not always text on its
// own (a byte-level BPE token can hold half a UTF-8 character; a WordPiece "##" piece extends
// the word before it; decoding tidies spaces before punctuation). So the streamer decodes
// everything so far and writes only what can no longer change: up to the last space or newline,
// never a trailing U+FFFD, as Hugging Face's TextStreamer.
import type { Tokenizer } from "../tokenizers/index.js";

export class TextStreamer {
  private readonly ids: number[] = [];
  private written = "";

  constructor(private readonly tokenizer: Tokenizer, private readonly write: (text: string) => void, private readonly options: { skipSpecialTokens?: boolean } = {}) {}

  /** Adds generated tokens and writes whatever text they settle. */
  put(tokens: readonly number[]): void {
    this.ids.push(...tokens);
    const text = this.decode();
    const settled = text.endsWith("\n") ? text : text.slice(0, text.lastIndexOf(" ") + 1);
    this.emit(settled.endsWith("\uFFFD") ? settled.replace(/\uFFFD+$/, "") : settled);
  }

  /** Writes the rest (call once, when generation ends). */
  end(): void {
    this.emit(this.decode());
  }

  /** All the text written so far. */
  get text(): string {
    return this.written;
  }

  private decode(): string {
    return this.tokenizer.decode(this.ids, { skipSpecialTokens: this.options.skipSpecialTokens ?? true });
  }

  // Text already written cannot be taken back: a decode that rewrote it (rare cleanup) waits for end().
  private emit(text: string): void {
    if (text.length > this.written.length && text.startsWith(this.written)) {
      this.write(text.slice(this.written.length));
      this.written = text;
    }
  }
}
