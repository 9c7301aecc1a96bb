// lmforge's library entry. Everything a user needs is exported from here.
export * as torch from "./torch/index.js";
export * from "./torch/index.js";
