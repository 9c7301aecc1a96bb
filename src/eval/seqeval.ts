// Entity-level scores for sequence labelling, as the Python package seqeval (1.2.x) computes them:
// an entity counts only when its type, start and end all match.
//
// Two ways to find entities, as in seqeval:
//   default  conlleval's chunking (seqeval.metrics.sequence_labeling.get_entities): lenient; an
//            I-X after O or after another type begins an entity, E- and S- are understood.
//   strict   seqeval.scheme's Tokens / Entities (mode="strict" with a scheme): only well-formed
//            entities count (IOB2: B-X I-X*; IOBES: B-X I-X* E-X or S-X); an I-X after O is nothing.
// Scores: micro over all entities; macro and weighted (by support) over the entity types seen in
// the truth or the predictions; a zero denominator gives 0 (seqeval's zero_division="warn").

export type SeqevalMode = "default" | "strict";

export interface SeqevalOptions {
  /** "default" (conlleval-compatible) or "strict". */
  mode?: SeqevalMode;
  /** Strict mode's scheme; default IOBES if the truth holds an E- or S- tag, else IOB2. */
  scheme?: "IOB2" | "IOBES";
}

export interface EntitySpan {
  type: string;
  start: number;
  /** Exclusive. */
  end: number;
}

export interface SeqevalScores {
  precision: number;
  recall: number;
  f1: number;
}

export interface SeqevalReport extends SeqevalScores {
  /** Token-level accuracy (seqeval's accuracy_score): tags equal / all tags. */
  accuracy: number;
  macro: SeqevalScores;
  weighted: SeqevalScores;
  /** Sorted by type; support = true entities of the type (0 for a type only predicted). */
  per_type: Record<string, SeqevalScores & { support: number }>;
  /** True entities in all. */
  support: number;
}

const divide = (a: number, b: number): number => (b === 0 ? 0 : a / b);
const harmonic = (p: number, r: number): number => (p + r === 0 ? 0 : (2 * p * r) / (p + r));

/**
 * conlleval's chunking over one flat sequence (seqeval's get_entities): each tag is split into a
 * prefix (its first character) and a type (after the first "-", "_" when empty), then
 * end_of_chunk / start_of_chunk decide, between each pair of tags, whether an entity ended and
 * whether one begins. Returns [type, start, end exclusive] triples.
 */
function chunk(seq: readonly string[]): [string, number, number][] {
  const found: [string, number, number][] = [];
  let prevTag = "O";
  let prevType = "";
  let begin = 0;
  for (let i = 0; i <= seq.length; i++) {
    const tagText = i < seq.length ? seq[i]! : "O"; // a final O closes the last entity
    if (tagText === "") throw new Error(`seqeval: empty tag at position ${i}`);
    const tag = tagText[0]!;
    const rest = tagText.slice(1);
    const dash = rest.indexOf("-");
    const type = (dash < 0 ? rest : rest.slice(dash + 1)) || "_";
    const typeChanged = prevType !== type;
    const ended =
      prevTag === "E" || prevTag === "S" ||
      ((prevTag === "B" || prevTag === "I") && (tag === "B" || tag === "S" || tag === "O")) ||
      (prevTag !== "O" && prevTag !== "." && typeChanged);
    const started =
      tag === "B" || tag === "S" ||
      ((prevTag === "E" || prevTag === "S" || prevTag === "O") && (tag === "E" || tag === "I")) ||
      (tag !== "O" && tag !== "." && typeChanged);
    if (ended) found.push([prevType, begin, i]);
    if (started) begin = i;
    prevTag = tag;
    prevType = type;
  }
  return found;
}

const STRICT_PREFIXES = { IOB2: "BIO", IOBES: "BIESO" } as const;

/**
 * seqeval's strict entities in one sentence: a B-X followed by I-X of the same type (IOBES: and
 * closed by E-X), or an S-X. The type is what follows the prefix, stripped of "-".
 */
function strictChunk(seq: readonly string[], scheme: "IOB2" | "IOBES", where: string): [string, number, number][] {
  const parsed = seq.map((t, i) => {
    const prefix = t[0] ?? "";
    if (!STRICT_PREFIXES[scheme].includes(prefix) || prefix === "") {
      throw new Error(`seqeval: ${where}, tag ${i} ${JSON.stringify(t)} is not valid in ${scheme} (allowed prefixes: ${[...STRICT_PREFIXES[scheme]].join(", ")})`);
    }
    return { prefix, type: t.slice(1).replace(/^-+|-+$/g, "") || "_" };
  });
  const found: [string, number, number][] = [];
  for (let i = 0; i < parsed.length; ) {
    const { prefix, type } = parsed[i]!;
    if (prefix === "S") {
      found.push([type, i, i + 1]);
      i += 1;
    } else if (prefix === "B") {
      // inside: I-X after B-X or I-X (IOBES: E-X too, which closes the entity)
      let j = i + 1;
      while (j < parsed.length && "BI".includes(parsed[j - 1]!.prefix) && (parsed[j]!.prefix === "I" || (scheme === "IOBES" && parsed[j]!.prefix === "E")) && parsed[j]!.type === type) j++;
      if (scheme === "IOB2" || parsed[j - 1]!.prefix === "E") found.push([type, i, j]);
      i = j;
    } else {
      i += 1;
    }
  }
  return found;
}

function strictScheme(o: SeqevalOptions, truth: readonly (readonly string[])[]): "IOB2" | "IOBES" {
  if (o.scheme) return o.scheme;
  return truth.some((s) => s.some((t) => t.startsWith("E") || t.startsWith("S"))) ? "IOBES" : "IOB2";
}

/**
 * The entities in one tag sequence, in order of their end.
 *
 * @example entities(["B-PER", "I-PER", "O", "I-LOC"]) // [{type:"PER",start:0,end:2}, {type:"LOC",start:3,end:4}]
 * @example entities(["B-PER", "I-PER", "O", "I-LOC"], { mode: "strict" }) // [{type:"PER",start:0,end:2}]
 */
export function entities(tags: readonly string[], options: SeqevalOptions = {}): EntitySpan[] {
  const found = options.mode === "strict" ? strictChunk(tags, strictScheme(options, [tags]), "sequence") : chunk(tags);
  return found.map(([type, start, end]) => ({ type, start, end }));
}

/** Each type's entities as "sentence:start:end" keys. */
function entitySets(sequences: readonly (readonly string[])[], options: SeqevalOptions, scheme: "IOB2" | "IOBES"): Map<string, Set<string>> {
  const byType = new Map<string, Set<string>>();
  const add = (type: string, key: string): void => {
    const set = byType.get(type) ?? new Set<string>();
    set.add(key);
    byType.set(type, set);
  };
  if (options.mode === "strict") {
    sequences.forEach((seq, s) => strictChunk(seq, scheme, `sentence ${s}`).forEach(([type, a, b]) => add(type, `${s}:${a}:${b}`)));
  } else {
    // seqeval chunks all sentences as one sequence, each followed by an O; keys are offsets in it
    const flat = sequences.flatMap((seq) => [...seq, "O"]);
    chunk(flat).forEach(([type, a, b]) => add(type, `${a}:${b}`));
  }
  return byType;
}

/**
 * Entity-level precision, recall and F1 (micro, macro, weighted and per type) and token accuracy,
 * as seqeval's classification_report and accuracy_score give them.
 *
 * @example
 * seqevalReport([["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]]).f1 // 0: the span must match exactly
 */
export function seqevalReport(truth: readonly (readonly string[])[], predicted: readonly (readonly string[])[], options: SeqevalOptions = {}): SeqevalReport {
  if (truth.length !== predicted.length) throw new Error(`seqeval: ${truth.length} true sentences but ${predicted.length} predicted`);
  let tokens = 0;
  let correct = 0;
  truth.forEach((t, s) => {
    const p = predicted[s]!;
    if (t.length !== p.length) throw new Error(`seqeval: sentence ${s} has ${t.length} true tags but ${p.length} predicted`);
    tokens += t.length;
    t.forEach((tag, k) => (correct += tag === p[k] ? 1 : 0));
  });
  const scheme = strictScheme(options, truth);
  const trueSets = entitySets(truth, options, scheme);
  const predSets = entitySets(predicted, options, scheme);
  const types = [...new Set([...trueSets.keys(), ...predSets.keys()])].sort();

  const perType: SeqevalReport["per_type"] = {};
  let tpAll = 0;
  let predAll = 0;
  let trueAll = 0;
  for (const type of types) {
    const t = trueSets.get(type) ?? new Set<string>();
    const p = predSets.get(type) ?? new Set<string>();
    let tp = 0;
    for (const key of p) tp += t.has(key) ? 1 : 0;
    const precision = divide(tp, p.size);
    const recall = divide(tp, t.size);
    perType[type] = { precision, recall, f1: harmonic(precision, recall), support: t.size };
    tpAll += tp;
    predAll += p.size;
    trueAll += t.size;
  }
  const rows = types.map((type) => perType[type]!);
  const average = (weight: (r: { support: number }) => number): SeqevalScores => {
    const total = rows.reduce((s, r) => s + weight(r), 0);
    const mean = (key: keyof SeqevalScores): number => divide(rows.reduce((s, r) => s + r[key] * weight(r), 0), total);
    return { precision: mean("precision"), recall: mean("recall"), f1: mean("f1") };
  };
  const precision = divide(tpAll, predAll);
  const recall = divide(tpAll, trueAll);
  return {
    precision,
    recall,
    f1: harmonic(precision, recall),
    accuracy: divide(correct, tokens),
    macro: average(() => 1),
    weighted: average((r) => r.support),
    per_type: perType,
    support: trueAll,
  };
}

/**
 * A number as Python's "{:.Nf}" writes it: like toFixed, but an exact tie rounds to even
 * (Python: 0.125 -> "0.12"; toFixed: "0.13").
 */
function pythonFixed(x: number, digits: number): string {
  const extra = 25; // far below a double's spacing near 1: a tail of 5 then zeros is an exact tie
  const long = x.toFixed(digits + extra);
  const tail = long.slice(-extra);
  if (!/^50*$/.test(tail)) return x.toFixed(digits);
  const head = long.slice(0, -extra).replace(/\.$/, "");
  const lastDigit = Number(head.replace(/\D/g, "").slice(-1));
  return lastDigit % 2 === 0 ? head : x.toFixed(digits);
}

/**
 * The report as seqeval's classification_report prints it: one row per type, then micro, macro
 * and weighted averages (support: all true entities), then token accuracy on a line of its own.
 */
export function formatSeqevalReport(report: SeqevalReport, digits = 2): string {
  const names = Object.keys(report.per_type);
  const width = Math.max(...names.map((n) => n.length), "weighted avg".length, digits);
  const row = (name: string, s: SeqevalScores, support: number): string =>
    `${name.padStart(width)} ` + [s.precision, s.recall, s.f1].map((v) => ` ${pythonFixed(v, digits).padStart(9)}`).join("") + ` ${String(support).padStart(9)}`;
  return [
    `${"".padStart(width)} ` + ["precision", "recall", "f1-score", "support"].map((h) => ` ${h.padStart(9)}`).join(""),
    "",
    ...names.map((n) => row(n, report.per_type[n]!, report.per_type[n]!.support)),
    "",
    row("micro avg", report, report.support),
    row("macro avg", report.macro, report.support),
    row("weighted avg", report.weighted, report.support),
    "",
    `${"accuracy".padStart(width)}  ${pythonFixed(report.accuracy, digits).padStart(9)}`,
    "",
  ].join("\n");
}
