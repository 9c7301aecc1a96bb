// Labelled image sets for the vision models (src/models/vision.ts): read once into bytes,
// normalised to float tensors per batch, with the texts that name their classes.
//
// Two layouts, found by what a folder holds:
//   - IDX (MNIST, Fashion-MNIST; Debian's dataset-fashion-mnist installs them under
//     /usr/share/datasets/fashion-mnist): train-images-idx3-ubyte[.gz] + train-labels-idx1-ubyte[.gz]
//     and t10k-images-idx3-ubyte[.gz] + t10k-labels-idx1-ubyte[.gz], found by these standard names.
//   - PNG folders: DIR/train/<class>/*.png and DIR/test/<class>/*.png, or DIR/<class>/*.png for
//     one part. A class folder is a class name ("Sneaker", "ankle boot") or a Fashion-MNIST class
//     index (0-9); sub-folder names (not a labels file) carry the labels, as torchvision's
//     ImageFolder and Hugging Face's imagefolder do, so a set can be assembled by moving files.
//     Other class names are taken as they are, sorted.
//
// Pixels are kept as bytes (60,000 28x28 images: 47 MB) and normalised when a batch is made:
// x = (v / 255 - mean) / std with Fashion-MNIST's training-set statistics (mean 0.2860, std
// 0.3530, computed over its 60,000 x 784 pixels), the same for every channel.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, join } from "node:path";
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import type { Tokenizer } from "../tokenizers/index.js";
import { readIdx } from "./idx.js";
import { splitIndices } from "./random.js";

/** Fashion-MNIST's pixel statistics on its training set (values / 255), used for every channel. */
export const PIXEL_MEAN = 0.286;
export const PIXEL_STD = 0.353;

/** A class: its name (the label), the words prompts use for it, and a one-line description. */
export interface ImageClass {
  name: string;
  prompt: string;
  description: string;
}

/** Fashion-MNIST's ten classes in label order (0-9), with descriptions written for the prompts. */
export const FASHION_MNIST_CLASSES: readonly ImageClass[] = [
  { name: "T-shirt/top", prompt: "t-shirt", description: "a short-sleeved shirt or top without a collar, pulled over the head" },
  { name: "Trouser", prompt: "trouser", description: "a pair of trousers with two long legs, seen from the front" },
  { name: "Pullover", prompt: "pullover", description: "a long-sleeved knitted sweater pulled over the head" },
  { name: "Dress", prompt: "dress", description: "a one-piece garment for women, a top and a skirt in one" },
  { name: "Coat", prompt: "coat", description: "a long outer garment with sleeves, buttons or a zip down the front" },
  { name: "Sandal", prompt: "sandal", description: "an open shoe of straps on a sole, for summer" },
  { name: "Shirt", prompt: "shirt", description: "a shirt with a collar and buttons down the front" },
  { name: "Sneaker", prompt: "sneaker", description: "a low sports shoe with a rubber sole and laces" },
  { name: "Bag", prompt: "bag", description: "a handbag or a bag with handles for carrying things" },
  { name: "Ankle boot", prompt: "ankle boot", description: "a boot that covers the foot and reaches the ankle" },
];

/**
 * The texts that pair an image with its class: {label} is the class's prompt words and
 * {description} its description. The first is the one evaluation batches use; zero-shot
 * classification averages over all of them (CLIP's prompt ensembling).
 */
export const TEXT_TEMPLATES: readonly string[] = [
  "a photo of a {label}.",
  "a picture of a {label}.",
  "a photo of the {label}.",
  "a black and white photo of a {label}.",
  "a low resolution photo of a {label}.",
  "an image of a {label}, an item of clothing.",
  "a {label}: {description}.",
  "{description}.",
];

/** The text of one template for one class. */
export function classText(template: string, cls: ImageClass): string {
  return template.replaceAll("{label}", cls.prompt).replaceAll("{description}", cls.description);
}

/** The class entries for label names: Fashion-MNIST's own where the name is one of its classes, else the name itself. */
export function classesFor(names: readonly string[]): ImageClass[] {
  return names.map((n) => FASHION_MNIST_CLASSES.find((c) => c.name === n) ?? { name: n, prompt: n.toLowerCase(), description: `a ${n.toLowerCase()}` });
}

/** Labelled images, pixels as bytes in (N, C, H, W) order. */
export interface ImageSet {
  /** N x C x H x W bytes, 0 = black. */
  pixels: Uint8Array;
  /** The class index of each image. */
  labels: Int32Array;
  count: number;
  channels: number;
  height: number;
  width: number;
  /** Class names in index order. */
  classes: string[];
  /** Where it came from (a file pair or a folder), for messages. */
  source: string;
}

/** One image of a set: a view of its bytes, its class, and where it came from. */
export interface ImageExample {
  /** C x H x W bytes. */
  pixels: Uint8Array;
  label: number;
  source: string;
}

/** The examples of a set (views of its bytes, no copy). */
export function imageExamples(set: ImageSet): ImageExample[] {
  const size = set.channels * set.height * set.width;
  return Array.from({ length: set.count }, (_, i) => ({ pixels: set.pixels.subarray(i * size, (i + 1) * size), label: set.labels[i]!, source: `${set.source}#${i}` }));
}

/**
 * Images as a normalised float tensor (B, C, H, W): (v / 255 - PIXEL_MEAN) / PIXEL_STD. Grey
 * images given to a 3-channel model are repeated in each channel; RGB ones given to a grey
 * model become ITU-R 601 luma. Any other size is an error naming the image.
 */
export function pixelTensor(images: readonly ImageExample[], shape: { channels: number; height: number; width: number }): Tensor {
  const plane = shape.height * shape.width;
  const size = shape.channels * plane;
  const out = new Float32Array(images.length * size);
  const scale = 1 / (255 * PIXEL_STD);
  const shift = PIXEL_MEAN / PIXEL_STD;
  images.forEach((im, b) => {
    const p = im.pixels;
    const at = b * size;
    if (p.length === size) for (let i = 0; i < size; i++) out[at + i] = p[i]! * scale - shift;
    else if (p.length === plane && shape.channels === 3) for (let c = 0; c < 3; c++) for (let i = 0; i < plane; i++) out[at + c * plane + i] = p[i]! * scale - shift;
    else if (p.length === 3 * plane && shape.channels === 1) for (let i = 0; i < plane; i++) out[at + i] = Math.round(0.299 * p[i]! + 0.587 * p[plane + i]! + 0.114 * p[2 * plane + i]!) * scale - shift;
    else throw new Error(`${im.source}: the image has ${p.length} values, the model takes ${shape.channels}x${shape.height}x${shape.width} = ${size}`);
  });
  return torch.fromBuffer(Buffer.from(out.buffer), "float32", [images.length, shape.channels, shape.height, shape.width]);
}

/**
 * Token ids of every class's text under every template, class-major: row k * M + m is class k
 * with template m (M templates). With a tokenizer of [CLS] ... [SEP], the first token is [CLS].
 */
export function promptIds(tokenizer: Tokenizer, classes: readonly ImageClass[], templates: readonly string[], maxLength: number): number[][] {
  return classes.flatMap((c) => templates.map((t) => tokenizer.encode(classText(t, c), null, { maxLength, truncation: "longest_first" }).ids));
}

/** A seeded split of a set's examples into training and validation (a fraction held out). */
export function splitImages(examples: readonly ImageExample[], validationFraction: number, seed: number): { train: ImageExample[]; validation: ImageExample[] } {
  const idx = splitIndices(examples.length, { validation: validationFraction, test: 0 }, seed);
  return { train: idx.train.map((i) => examples[i]!), validation: idx.validation.map((i) => examples[i]!) };
}

/** Reads an IDX pair: images (N, H, W) or (N, C, H, W) of uint8, labels (N) of uint8. Class names default to Fashion-MNIST's. */
export function readIdxImages(imagesPath: string, labelsPath: string, classes: readonly string[] = FASHION_MNIST_CLASSES.map((c) => c.name)): ImageSet {
  const images = readIdx(imagesPath);
  const labels = readIdx(labelsPath);
  if (images.dtype !== "uint8") throw new Error(`${imagesPath}: images must be unsigned bytes (IDX type 0x08), found ${images.dtype}`);
  if (images.shape.length !== 3 && images.shape.length !== 4) throw new Error(`${imagesPath}: images must have 3 dimensions (N, H, W) or 4 (N, C, H, W), found [${images.shape.join(", ")}]`);
  if (labels.shape.length !== 1) throw new Error(`${labelsPath}: labels must have 1 dimension (N), found [${labels.shape.join(", ")}]`);
  const [count, ...rest] = images.shape as [number, ...number[]];
  if (labels.shape[0] !== count) throw new Error(`${labelsPath}: ${labels.shape[0]} labels for the ${count} images of ${imagesPath}`);
  const [channels, height, width] = rest.length === 3 ? (rest as [number, number, number]) : [1, rest[0]!, rest[1]!];
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const l = Number(labels.data[i]);
    if (!Number.isInteger(l) || l < 0 || l >= classes.length) throw new Error(`${labelsPath}: label ${l} of image ${i} is not a class index 0..${classes.length - 1}`);
    out[i] = l;
  }
  return { pixels: images.data as Uint8Array, labels: out, count, channels, height, width, classes: [...classes], source: imagesPath };
}

// pngjs ships no types: the part of its API used here
interface DecodedPng {
  width: number;
  height: number;
  /** RGBA, 8 bits per channel, whatever the file's colour type and depth. */
  data: Buffer;
}
interface PngModule {
  PNG: { sync: { read(buffer: Buffer): DecodedPng; write(png: { width: number; height: number; data: Buffer }, options?: { colorType?: number; inputColorType?: number; inputHasAlpha?: boolean }): Buffer } };
}
const png = createRequire(import.meta.url)("pngjs") as PngModule;

/**
 * Decodes a PNG (any colour type and bit depth pngjs reads) into `channels` (1: grey, 3: RGB)
 * bytes in (C, H, W) order. Grey is ITU-R 601 luma (0.299 R + 0.587 G + 0.114 B, as PIL's "L");
 * transparency is composited over black, Fashion-MNIST's background.
 */
export function decodePng(bytes: Buffer, channels: 1 | 3, file = "PNG"): { pixels: Uint8Array; height: number; width: number } {
  let img: DecodedPng;
  try {
    img = png.PNG.sync.read(bytes);
  } catch (e) {
    throw new Error(`${file}: not a readable PNG (${(e as Error).message})`);
  }
  const { width, height, data } = img;
  const n = width * height;
  const out = new Uint8Array(channels * n);
  for (let p = 0; p < n; p++) {
    const a = data[4 * p + 3]! / 255;
    const [r, g, b] = [data[4 * p]! * a, data[4 * p + 1]! * a, data[4 * p + 2]! * a];
    if (channels === 1) out[p] = Math.round(0.299 * r + 0.587 * g + 0.114 * b);
    else {
      out[p] = Math.round(r);
      out[n + p] = Math.round(g);
      out[2 * n + p] = Math.round(b);
    }
  }
  return { pixels: out, height, width };
}

/** Encodes grey (H, W) bytes as an 8-bit greyscale PNG (fixtures, tests, exporting a set). */
export function encodeGreyPng(pixels: Uint8Array, height: number, width: number): Buffer {
  const rgba = Buffer.alloc(4 * width * height);
  for (let p = 0; p < width * height; p++) rgba.fill(pixels[p]!, 4 * p, 4 * p + 3).writeUInt8(255, 4 * p + 3);
  return png.PNG.sync.write({ width, height, data: rgba }, { colorType: 0 });
}

/** Reads one PNG file into `channels`; a wrong size (when `size` is given) names the file. */
export function readPng(path: string, channels: 1 | 3, size?: { height: number; width: number }): ImageExample & { height: number; width: number } {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const img = decodePng(bytes, channels, path);
  if (size && (img.height !== size.height || img.width !== size.width)) throw new Error(`${path}: the image is ${img.width}x${img.height}, the model takes ${size.width}x${size.height} (resize it first)`);
  return { pixels: img.pixels, label: -1, source: path, height: img.height, width: img.width };
}

const IDX_NAMES = { train: "train", test: "t10k" } as const;

/** The IDX pair of a part in a folder, by the standard names (with or without .gz); null when absent. */
function idxPair(dir: string, part: "train" | "test"): { images: string; labels: string } | null {
  const find = (stem: string): string | undefined => [stem, `${stem}.gz`].map((f) => join(dir, f)).find((f) => existsSync(f));
  const images = find(`${IDX_NAMES[part]}-images-idx3-ubyte`);
  const labels = find(`${IDX_NAMES[part]}-labels-idx1-ubyte`);
  if (images && !labels) throw new Error(`${dir}: ${basename(images)} is there but not ${IDX_NAMES[part]}-labels-idx1-ubyte[.gz]`);
  return images && labels ? { images, labels } : null;
}

/** A class folder's name -> its class: a Fashion-MNIST index (0-9) or name, matched without case. */
function folderClass(name: string): string {
  if (/^\d$/.test(name)) return FASHION_MNIST_CLASSES[Number(name)]!.name;
  return FASHION_MNIST_CLASSES.find((c) => c.name.toLowerCase() === name.toLowerCase() || c.prompt === name.toLowerCase())?.name ?? name;
}

/** Reads DIR/<class>/*.png into a set of `channels`; every image must have the first one's size. */
function readPngFolder(dir: string, channels: 1 | 3): ImageSet {
  const folders = readdirSync(dir).filter((f) => statSync(join(dir, f)).isDirectory()).sort();
  if (folders.length === 0) throw new Error(`${dir}: no class sub-folders (expected <class>/*.png, or IDX files train-images-idx3-ubyte[.gz] ...)`);
  const names = folders.map(folderClass);
  const known = FASHION_MNIST_CLASSES.map((c) => c.name);
  // Fashion-MNIST's order where every folder is one of its classes, so that label indices match the IDX files'
  const classes = names.every((n) => known.includes(n)) ? known : [...names].sort();
  const images: Uint8Array[] = [];
  const labels: number[] = [];
  let shape: { height: number; width: number } | undefined;
  folders.forEach((folder, k) => {
    for (const f of readdirSync(join(dir, folder)).filter((f) => f.toLowerCase().endsWith(".png")).sort()) {
      const im = readPng(join(dir, folder, f), channels, shape);
      shape ??= { height: im.height, width: im.width };
      images.push(im.pixels);
      labels.push(classes.indexOf(names[k]!));
    }
  });
  if (!shape || images.length === 0) throw new Error(`${dir}: the class folders hold no .png files`);
  const size = channels * shape.height * shape.width;
  const pixels = new Uint8Array(images.length * size);
  images.forEach((im, i) => pixels.set(im, i * size));
  return { pixels, labels: Int32Array.from(labels), count: images.length, channels, height: shape.height, width: shape.width, classes, source: dir };
}

/**
 * The training or test part of an image folder: IDX files by their standard names (Debian's
 * /usr/share/datasets/fashion-mnist), or PNGs in DIR/train|test/<class>/ (DIR/<class>/ when the
 * folder has no train/test parts: it is then both). A file given instead of a folder is an IDX
 * images file, its labels beside it (train-images... -> train-labels...).
 */
export function loadImageSet(path: string, part: "train" | "test", channels: 1 | 3 = 1): ImageSet {
  if (!existsSync(path)) throw new Error(`${path}: no such file or folder`);
  if (statSync(path).isFile()) {
    const labels = path.replace("-images-idx3-", "-labels-idx1-");
    if (labels === path || !existsSync(labels)) throw new Error(`${path}: an IDX images file needs its labels beside it (named ...-labels-idx1-ubyte[.gz])`);
    return fromGrey(readIdxImages(path, labels), channels);
  }
  const idx = idxPair(path, part);
  if (idx) return fromGrey(readIdxImages(idx.images, idx.labels), channels);
  const sub = join(path, part);
  if (existsSync(sub) && statSync(sub).isDirectory()) return readPngFolder(sub, channels);
  const other = part === "train" ? idxPair(path, "test") : idxPair(path, "train");
  if (other) throw new Error(`${path}: no ${IDX_NAMES[part]}-images-idx3-ubyte[.gz] (the ${part} part); only the ${part === "train" ? "test" : "training"} files are there`);
  return readPngFolder(path, channels);
}

/** Grey IDX images repeated into 3 channels when the model takes RGB. */
function fromGrey(set: ImageSet, channels: 1 | 3): ImageSet {
  if (set.channels === channels) return set;
  if (set.channels !== 1) throw new Error(`${set.source}: ${set.channels}-channel images cannot become ${channels}-channel ones`);
  const plane = set.height * set.width;
  const pixels = new Uint8Array(set.count * 3 * plane);
  for (let i = 0; i < set.count; i++) for (let c = 0; c < 3; c++) pixels.set(set.pixels.subarray(i * plane, (i + 1) * plane), (3 * i + c) * plane);
  return { ...set, pixels, channels: 3 };
}
