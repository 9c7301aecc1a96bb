// Classification metrics: accuracy, precision / recall / F1 per class and averaged (macro,
// micro, weighted), the confusion matrix, and ROC AUC for two classes.

export interface ClassReport {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface ClassificationReport {
  accuracy: number;
  macro_f1: number;
  micro_f1: number;
  weighted_f1: number;
  macro_precision: number;
  macro_recall: number;
  per_class: Record<string, ClassReport>;
  /** confusion_matrix[true][predicted], rows and columns in `labels` order. */
  confusion_matrix: number[][];
  labels: string[];
  /** Two classes only: the area under the ROC curve of the second label's score. */
  roc_auc?: number;
  count: number;
}

function safeDiv(a: number, b: number): number {
  return b === 0 ? 0 : a / b;
}

/**
 * Scores predictions (class indices) against true labels (class indices). scores: for two
 * classes, each example's probability of class 1 (for ROC AUC).
 */
export function classificationReport(truth: number[], predicted: number[], labels: string[], scores?: number[]): ClassificationReport {
  if (truth.length !== predicted.length) throw new Error(`metrics: ${truth.length} labels but ${predicted.length} predictions`);
  const k = labels.length;
  const cm = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  truth.forEach((t, i) => {
    const p = predicted[i]!;
    if (t < 0 || t >= k || p < 0 || p >= k) throw new Error(`metrics: class index out of range at ${i} (true ${t}, predicted ${p}, ${k} classes)`);
    cm[t]![p]! += 1;
  });
  const n = truth.length;
  const correct = cm.reduce((s, row, i) => s + row[i]!, 0);
  const perClass: Record<string, ClassReport> = {};
  let macroF1 = 0;
  let macroP = 0;
  let macroR = 0;
  let weighted = 0;
  labels.forEach((label, c) => {
    const tp = cm[c]![c]!;
    const support = cm[c]!.reduce((a, b) => a + b, 0);
    const predictedC = cm.reduce((s, row) => s + row[c]!, 0);
    const precision = safeDiv(tp, predictedC);
    const recall = safeDiv(tp, support);
    const f1 = safeDiv(2 * precision * recall, precision + recall);
    perClass[label] = { precision, recall, f1, support };
    macroF1 += f1 / k;
    macroP += precision / k;
    macroR += recall / k;
    weighted += (f1 * support) / Math.max(1, n);
  });
  const report: ClassificationReport = {
    accuracy: safeDiv(correct, n),
    // single-label classification: micro precision = micro recall = micro F1 = accuracy
    micro_f1: safeDiv(correct, n),
    macro_f1: macroF1,
    weighted_f1: weighted,
    macro_precision: macroP,
    macro_recall: macroR,
    per_class: perClass,
    confusion_matrix: cm,
    labels,
    count: n,
  };
  if (k === 2 && scores) report.roc_auc = rocAuc(truth, scores);
  return report;
}

/** ROC AUC as the Mann-Whitney statistic: the chance a positive outscores a negative (ties count half). */
export function rocAuc(truth: number[], scores: number[]): number {
  const idx = scores.map((s, i) => [s, i] as const).sort((a, b) => a[0] - b[0]);
  // average ranks over ties
  const ranks = new Array<number>(scores.length);
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && idx[j + 1]![0] === idx[i]![0]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[idx[k]![1]] = r;
    i = j + 1;
  }
  const pos = truth.filter((t) => t === 1).length;
  const neg = truth.length - pos;
  if (pos === 0 || neg === 0) return NaN;
  const rankSum = truth.reduce((s, t, i) => s + (t === 1 ? ranks[i]! : 0), 0);
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** The per-class table and confusion matrix as text. */
export function formatReport(r: ClassificationReport): string {
  const w = Math.max(8, ...r.labels.map((l) => l.length));
  const cell = Math.max(8, ...r.labels.map((l) => l.length + 1));
  const lines = [
    `${"class".padEnd(w)}  precision  recall     f1  support`,
    ...r.labels.map((l) => {
      const c = r.per_class[l]!;
      return `${l.padEnd(w)}  ${c.precision.toFixed(4).padStart(9)}  ${c.recall.toFixed(4).padStart(6)}  ${c.f1.toFixed(4).padStart(5)}  ${String(c.support).padStart(7)}`;
    }),
    "",
    `accuracy ${r.accuracy.toFixed(4)}   macro F1 ${r.macro_f1.toFixed(4)}   micro F1 ${r.micro_f1.toFixed(4)}   weighted F1 ${r.weighted_f1.toFixed(4)}${r.roc_auc !== undefined ? `   ROC AUC ${r.roc_auc.toFixed(4)}` : ""}`,
    "",
    `confusion matrix (rows: true, columns: predicted)`,
    // columns as wide as the longest label and a space ("Democratic" and "Republican" ran together at 8)
    `${"".padEnd(w)}  ${r.labels.map((l) => l.padStart(cell)).join("")}`,
    ...r.confusion_matrix.map((row, i) => `${r.labels[i]!.padEnd(w)}  ${row.map((x) => String(x).padStart(cell)).join("")}`),
  ];
  return lines.join("\n");
}
