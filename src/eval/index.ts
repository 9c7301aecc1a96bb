export { classificationReport, rocAuc, formatReport } from "./metrics.js";
export type { ClassificationReport, ClassReport } from "./metrics.js";
