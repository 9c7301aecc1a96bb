#!/usr/bin/env node
// Generates the op bindings from the one declarative table, native/ops.def:
//   native/generated/ops.inc        N-API callbacks (C++) and their registration list
//   src/torch/generated/ops.ts      typed free functions and Tensor methods
//   src/torch/generated/native-ops.ts  the addon's op signatures, for native.ts
// Adding an op is one line in native/ops.def. Run with `npm run gen` (the builds run it).
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const tablePath = join(root, "native/ops.def");

/** Splits on commas that are not inside brackets or braces. */
function splitTop(text) {
  const parts = [];
  let depth = 0;
  let cur = "";
  for (const ch of text) {
    if (ch === "[" || ch === "{" || ch === "(") depth++;
    if (ch === "]" || ch === "}" || ch === ")") depth--;
    if (ch === "," && depth === 0) {
      parts.push(cur.trim());
      cur = "";
    } else cur += ch;
  }
  if (cur.trim()) parts.push(cur.trim());
  return parts;
}

const ARG_TYPES = new Set([
  "Tensor", "Tensor?", "Tensor[]", "Tensor|Scalar", "Scalar", "Scalar?", "int", "int?", "int[]",
  "int[]?", "float", "float?", "bool", "str", "dtype", "dtype?", "device", "device?", "reduction", "options",
]);
const RET_TYPES = new Set(["Tensor", "self", "Tensor[]", "(Tensor,Tensor)", "bool", "float", "int", "number", "void"]);

function parseLine(line, lineNo) {
  const m = /^(\w+)\((.*)\)\s*->\s*(\(Tensor,Tensor\)|\S+)\s*=\s*(.+)$/.exec(line);
  if (!m) throw new Error(`native/ops.def:${lineNo}: cannot parse: ${line}`);
  const [, name, argText, ret, rest] = m;
  let callee = rest;
  const flags = { method: false, since: null };
  for (;;) {
    const fm = /\s+@(method|since)(?:\s+(\d+)\.(\d+))?\s*$/.exec(callee);
    if (!fm) break;
    if (fm[1] === "method") flags.method = true;
    else flags.since = [Number(fm[2]), Number(fm[3])];
    callee = callee.slice(0, fm.index);
  }
  callee = callee.trim();
  if (!RET_TYPES.has(ret)) throw new Error(`native/ops.def:${lineNo}: unknown return type ${ret}`);
  const args = splitTop(argText).map((a) => {
    const am = /^(\S+?(?:\{[^}]*\})?)\s+(\w+)(?:=(.*))?$/.exec(a);
    if (!am) throw new Error(`native/ops.def:${lineNo}: cannot parse argument '${a}'`);
    let [, type, argName, def] = am;
    let choices = null;
    const cm = /^str\{(.*)\}$/.exec(type);
    if (cm) {
      choices = cm[1].split("|");
      type = "str";
    }
    if (!ARG_TYPES.has(type)) throw new Error(`native/ops.def:${lineNo}: unknown argument type ${type}`);
    return { type, name: argName, def: def === undefined ? undefined : def.trim(), choices };
  });
  return { name, args, ret, callee, flags, line: line.trim() };
}

const ops = [];
readFileSync(tablePath, "utf8").split("\n").forEach((raw, i) => {
  const line = raw.trim();
  if (!line || line.startsWith("#")) return;
  ops.push(parseLine(line, i + 1));
});
const seen = new Set();
for (const op of ops) {
  if (seen.has(op.name)) throw new Error(`native/ops.def: op ${op.name} is defined twice`);
  seen.add(op.name);
}

// ---------------------------------------------------------------------------------------
// C++
function cppConvert(arg, i, opName) {
  const v = `argv[${i}]`;
  const ctx = `"${opName}", "${arg.name}"`;
  const n = arg.name;
  switch (arg.type) {
    case "Tensor": return `const at::Tensor& ${n} = lmf::tensor_arg(env, ${v}, ${ctx});`;
    case "Tensor?": return `c10::optional<at::Tensor> ${n} = lmf::opt_tensor_arg(env, ${v}, ${ctx});`;
    case "Tensor[]": return `std::vector<at::Tensor> ${n} = lmf::tensor_list_arg(env, ${v}, ${ctx});`;
    case "Scalar": return `at::Scalar ${n} = lmf::scalar_arg(env, ${v}, ${ctx});`;
    case "Scalar?": return `c10::optional<at::Scalar> ${n} = lmf::opt_scalar_arg(env, ${v}, ${ctx});`;
    case "int": return `int64_t ${n} = lmf::int_arg(env, ${v}, ${ctx});`;
    case "int?": return `c10::optional<int64_t> ${n} = lmf::opt_int_arg(env, ${v}, ${ctx});`;
    case "int[]": return `std::vector<int64_t> ${n} = lmf::int_list_arg(env, ${v}, ${ctx});`;
    case "int[]?":
      return `c10::optional<std::vector<int64_t>> ${n}_v = lmf::opt_int_list_arg(env, ${v}, ${ctx});\n` +
        `    at::OptionalIntArrayRef ${n} = ${n}_v ? at::OptionalIntArrayRef(*${n}_v) : at::OptionalIntArrayRef(c10::nullopt);`;
    case "float": return `double ${n} = lmf::float_arg(env, ${v}, ${ctx});`;
    case "float?": return `c10::optional<double> ${n} = lmf::opt_float_arg(env, ${v}, ${ctx});`;
    case "bool": return `bool ${n} = lmf::bool_arg(env, ${v}, ${ctx});`;
    case "str":
      if (arg.choices) {
        return `std::string ${n} = lmf::choice_arg(env, ${v}, ${ctx}, {${arg.choices.map((c) => `"${c}"`).join(", ")}});`;
      }
      return `std::string ${n} = lmf::str_arg(env, ${v}, ${ctx});`;
    case "dtype": return `at::ScalarType ${n} = lmf::dtype_arg(env, ${v}, ${ctx});`;
    case "dtype?": return `c10::optional<at::ScalarType> ${n} = lmf::opt_dtype_arg(env, ${v}, ${ctx});`;
    case "device": return `c10::Device ${n} = lmf::device_arg(env, ${v}, ${ctx});`;
    case "device?": return `c10::optional<c10::Device> ${n} = lmf::opt_device_arg(env, ${v}, ${ctx});`;
    case "reduction": return `int64_t ${n} = lmf::reduction_arg(env, ${v}, ${ctx});`;
    case "options":
      return `bool ${n}_rg = false;\n    at::TensorOptions ${n} = lmf::options_arg(env, ${v}, ${ctx}, &${n}_rg);`;
    default: throw new Error(`no C++ conversion for ${arg.type}`);
  }
}

function callExpr(op) {
  const names = op.args.map((a) => a.name);
  if (op.callee.startsWith(".")) return `${names[0]}${op.callee}(${names.slice(1).join(", ")})`;
  if (/^[\w:]+$/.test(op.callee)) return `${op.callee}(${names.join(", ")})`;
  return op.callee;
}

function cppReturn(op, expr) {
  const opt = op.args.find((a) => a.type === "options");
  const tensorExpr = opt ? `lmf::apply_requires_grad(${expr}, ${opt.name}_rg)` : expr;
  switch (op.ret) {
    case "Tensor": return `return lmf::ret_tensor(env, ${tensorExpr});`;
    case "self": return `${expr}; return nullptr;`;
    case "Tensor[]": return `return lmf::ret_tensor_list(env, ${expr});`;
    case "(Tensor,Tensor)": return `return lmf::ret_tensor_pair(env, ${expr});`;
    case "bool": return `return lmf::ret_bool(env, ${expr});`;
    case "float": return `return lmf::ret_double(env, ${expr});`;
    case "int": return `return lmf::ret_int(env, ${expr});`;
    case "number": return `return lmf::ret_scalar(env, ${expr});`;
    case "void": return `${expr}; return nullptr;`;
    default: throw new Error(op.ret);
  }
}

/** Native variants of an op: one per choice of Tensor or Scalar for each Tensor|Scalar argument. */
function variants(op) {
  const branching = op.args.map((a, i) => (a.type === "Tensor|Scalar" ? i : -1)).filter((i) => i >= 0);
  const out = [];
  for (let mask = 0; mask < 1 << branching.length; mask++) {
    const args = op.args.map((a, i) => {
      const k = branching.indexOf(i);
      if (k < 0) return a;
      return { ...a, type: (mask >> k) & 1 ? "Scalar" : "Tensor", either: true };
    });
    out.push({ ...op, args, nativeName: mask === 0 ? op.name : `${op.name}$${mask}`, mask });
  }
  return out;
}

function kinds(op) {
  return op.args.map((a) => (a.type === "Tensor" || a.type === "Tensor?" ? "t" : a.type === "Tensor[]" ? "l" : "v")).join("");
}

function cppBody(op) {
  const lines = op.args.map((a, i) => {
    let c = cppConvert(a, i, op.name);
    if (a.either) c = c.replace(/\);$/, a.type === "Scalar" ? ', "a Tensor, number or boolean");' : ");");
    return `    ${c}`;
  });
  lines.push(`    ${cppReturn(op, callExpr(op))}`);
  return lines.join("\n");
}

function versionGuard(op) {
  return op.flags.since ? `#if TORCH_VERSION_MAJOR > ${op.flags.since[0]} || (TORCH_VERSION_MAJOR == ${op.flags.since[0]} && TORCH_VERSION_MINOR >= ${op.flags.since[1]})` : null;
}

let cpp = "// GENERATED by scripts/gen-ops.mjs from native/ops.def. Do not edit by hand.\n\n";
const allVariants = ops.flatMap(variants);
for (const v of allVariants) {
  const guard = versionGuard(v);
  if (guard) cpp += `${guard}\n`;
  cpp += `// ${v.line}${v.mask ? `  [variant ${v.nativeName}]` : ""}\n`;
  cpp += `static napi_value op_${v.nativeName.replace("$", "_S")}(napi_env env, napi_callback_info info) {\n`;
  cpp += `  LMF_ARGS(${v.args.length});\n  LMF_TRY {\n${cppBody(v)}\n  } LMF_CATCH("${v.name}", argv, ${v.args.length}, "${kinds(v)}")\n}\n`;
  if (guard) cpp += "#endif\n";
  cpp += "\n";
}
cpp += "#define LMF_GENERATED_OPS(X) \\\n";
for (const v of allVariants) {
  const fn = `op_${v.nativeName.replace("$", "_S")}`;
  cpp += v.flags.since ? `  LMF_OP_IF_${v.flags.since[0]}_${v.flags.since[1]}(X, "${v.nativeName}", ${fn}) \\\n` : `  X("${v.nativeName}", ${fn}) \\\n`;
}
cpp += "\n";
const sinces = new Set(ops.filter((o) => o.flags.since).map((o) => o.flags.since.join("_")));
for (const s of sinces) {
  const [maj, min] = s.split("_");
  cpp += `#if TORCH_VERSION_MAJOR > ${maj} || (TORCH_VERSION_MAJOR == ${maj} && TORCH_VERSION_MINOR >= ${min})\n`;
  cpp += `#define LMF_OP_IF_${s}(X, name, fn) X(name, fn)\n#else\n#define LMF_OP_IF_${s}(X, name, fn)\n#endif\n`;
}

// ---------------------------------------------------------------------------------------
// TypeScript
function tsType(a) {
  switch (a.type) {
    case "Tensor": return "Tensor";
    case "Tensor?": return "Tensor | null";
    case "Tensor[]": return "readonly Tensor[]";
    case "Tensor|Scalar": return "Tensor | number | boolean";
    case "Scalar": return "number | boolean";
    case "Scalar?": return "number | boolean | null";
    case "int": case "float": return "number";
    case "int?": case "float?": return "number | null";
    case "int[]": return "number | readonly number[]";
    case "int[]?": return "number | readonly number[] | null";
    case "bool": return "boolean";
    case "str": return a.choices ? a.choices.map((c) => JSON.stringify(c)).join(" | ") : "string";
    case "dtype": return "DType";
    case "dtype?": return "DType | null";
    case "device": return "DeviceLike";
    case "device?": return "DeviceLike | null";
    case "reduction": return '"mean" | "sum" | "none"';
    case "options": return "TensorOptions";
    default: throw new Error(a.type);
  }
}
function tsNativeArgType(a) {
  switch (a.type) {
    case "Tensor": return "Handle";
    case "Tensor?": return "Handle | null";
    case "Tensor[]": return "Handle[]";
    case "Tensor|Scalar": return "Handle | number | boolean";
    default: return tsType(a);
  }
}
function tsPass(a, i, selfName) {
  const n = i === 0 && selfName ? selfName : a.name;
  switch (a.type) {
    case "Tensor": return `${n}._h`;
    case "Tensor?": return `${n} === null ? null : ${n}._h`;
    case "Tensor[]": return `${n}.map(handleOf)`;
    case "Tensor|Scalar": return `${n}._h`;
    default: return n;
  }
}
function tsParam(a) {
  const t = tsType(a);
  if (a.def === undefined) return `${a.name}: ${t}`;
  const d = a.def === "{}" ? "{}" : a.def;
  return `${a.name}: ${t} = ${d}`;
}
function tsRet(op) {
  switch (op.ret) {
    case "Tensor": case "self": return "Tensor";
    case "Tensor[]": return "Tensor[]";
    case "(Tensor,Tensor)": return "[Tensor, Tensor]";
    case "bool": return "boolean";
    case "float": case "int": case "number": return "number";
    case "void": return "void";
    default: throw new Error(op.ret);
  }
}
function tsNativeRet(op) {
  switch (op.ret) {
    case "Tensor": return "Handle";
    case "self": case "void": return "void";
    case "Tensor[]": return "Handle[]";
    case "(Tensor,Tensor)": return "[Handle, Handle]";
    default: return tsRet(op);
  }
}
function tsCall(op, selfName) {
  const nameOf = (i) => (i === 0 && selfName ? selfName : op.args[i].name);
  const call = (v) =>
    `native.${v.nativeName}(${v.args
      .map((a, i) => (a.either ? (a.type === "Scalar" ? `${nameOf(i)} as number | boolean` : `(${nameOf(i)} as Tensor)._h`) : tsPass(a, i, selfName)))
      .join(", ")})`;
  const vs = variants(op);
  const branching = op.args.map((a, i) => (a.type === "Tensor|Scalar" ? i : -1)).filter((i) => i >= 0);
  // Choose the variant by which Tensor|Scalar arguments are tensors (nested ternaries).
  const choose = (k, mask) => {
    if (k === branching.length) return call(vs.find((v) => v.mask === mask));
    return `(typeof ${nameOf(branching[k])} === "object" ? ${choose(k + 1, mask)} : ${choose(k + 1, mask | (1 << k))})`;
  };
  return choose(0, 0);
}

function tsBody(op, selfName) {
  const call = tsCall(op, selfName);
  const guard = op.flags.since ? `  if (native.${op.name} === undefined) throw new Error("${op.name} needs libtorch >= ${op.flags.since.join(".")}; this build has " + native.torchVersion);\n` : "";
  switch (op.ret) {
    case "Tensor": return `${guard}  return wrap(${call});`;
    case "self": return `${guard}  ${call};\n  return ${selfName ?? "self"};`;
    case "Tensor[]": return `${guard}  return ${call}.map(wrap);`;
    case "(Tensor,Tensor)": return `${guard}  const r = ${call};\n  return [wrap(r[0]), wrap(r[1])];`;
    case "void": return `${guard}  ${call};`;
    default: return `${guard}  return ${call};`;
  }
}

// Words a function may not be named; such ops are exported under their name all the same.
const RESERVED = new Set(["var", "delete", "new", "in", "typeof", "void", "with", "default"]);
const header = "// GENERATED by scripts/gen-ops.mjs from native/ops.def. Do not edit by hand.\n";
let ts = header + `import { Tensor, wrap, handleOf } from "../tensor.js";
import type { DType, DeviceLike, TensorOptions } from "../dtype.js";
import { native } from "../native.js";

`;
let methods = "";
let decl = "";
for (const op of ops) {
  const fnName = RESERVED.has(op.name) ? `${op.name}_` : op.name;
  if (fnName !== op.name) ts += `export { ${fnName} as ${op.name} };\n`;
  ts += `/** \`${op.line.replace(/\*\//g, "*\\/")}\` */\n${fnName !== op.name ? "" : "export "}function ${fnName}(${op.args.map(tsParam).join(", ")}): ${tsRet(op)} {\n${tsBody(op, null)}\n}\n\n`;
  if (op.flags.method) {
    const rest = op.args.slice(1);
    decl += `    ${op.name}(${rest.map((a) => (a.def === undefined ? `${a.name}: ${tsType(a)}` : `${a.name}?: ${tsType(a)}`)).join(", ")}): ${tsRet(op)};\n`;
    methods += `Tensor.prototype.${op.name} = function (this: Tensor${rest.length ? ", " : ""}${rest.map(tsParam).join(", ")}): ${tsRet(op)} {\n${tsBody(op, "this")}\n};\n`;
  }
}
ts += `declare module "../tensor.js" {\n  interface Tensor {\n${decl}  }\n}\n\n${methods}`;

let nativeTs = header + `import type { DType, DeviceLike, TensorOptions } from "../dtype.js";
/** A native tensor handle: a slot id of the addon's handle table (see native/lmf.h). */
export type Handle = number & { readonly __handle: unique symbol };

/** The op functions that the addon exports, one for each line of native/ops.def. */
export interface NativeOps {
`;
for (const v of allVariants) {
  nativeTs += `  ${JSON.stringify(v.nativeName)}${v.flags.since ? "?" : ""}(${v.args.map((a) => `${a.name}: ${tsNativeArgType(a)}`).join(", ")}): ${tsNativeRet(v)};\n`;
}
nativeTs += "}\n\nexport const OP_NAMES: readonly string[] = [\n" + ops.map((o) => `  "${o.name}",`).join("\n") + "\n];\n";

function writeIfChanged(path, text) {
  mkdirSync(dirname(path), { recursive: true });
  let old = null;
  try { old = readFileSync(path, "utf8"); } catch { /* new file */ }
  if (old !== text) writeFileSync(path, text);
}
writeIfChanged(join(root, "native/generated/ops.inc"), cpp);
writeIfChanged(join(root, "src/torch/generated/ops.ts"), ts);
writeIfChanged(join(root, "src/torch/generated/native-ops.ts"), nativeTs);
console.log(`gen-ops: ${ops.length} ops from native/ops.def`);
