// The JSON Schemas of every route (fastify validates requests with ajv and serialises answers
// with them), and the OpenAPI 3.1 document built from the same schemas as routes register.
// OpenAPI 3.1's schema objects are JSON Schema 2020-12, so the route schemas go in unchanged.
import type { RouteOptions } from "fastify";

/** Most texts (or questions) one request may carry: beyond it, split the request. */
export const MAX_ITEMS = 256;

const text = { type: "string", minLength: 1 } as const;
const texts = { type: "array", items: text, minItems: 1, maxItems: MAX_ITEMS } as const;
const truncated = { type: "boolean", description: "the input was longer than the model's max length and was cut" } as const;
const name = { type: "object", required: ["name"], properties: { name: { type: "string" } } } as const;

export const ERROR_SCHEMA = {
  type: "object",
  required: ["statusCode", "error", "message"],
  properties: {
    statusCode: { type: "integer" },
    error: { type: "string" },
    message: { type: "string" },
    field: { type: "string", description: "the request field at fault (invalid input)" },
  },
} as const;

const errors = { "4xx": ERROR_SCHEMA, "5xx": ERROR_SCHEMA } as const;

export const HEALTH_SCHEMA = {
  summary: "the process is alive",
  response: { 200: { type: "object", properties: { status: { type: "string" } } } },
} as const;

export const READY_SCHEMA = {
  summary: "every model is loaded and has answered one warm-up request (503 until then, and while draining)",
  response: { 200: { type: "object", properties: { status: { type: "string" }, models: { type: "array", items: { type: "string" } } } }, 503: ERROR_SCHEMA },
} as const;

export const MODELS_SCHEMA = {
  summary: "the models served: name, task, labels, max length, parameter count, endpoints",
  response: {
    200: {
      type: "object",
      properties: {
        models: {
          type: "array",
          items: {
            type: "object",
            properties: {
              name: { type: "string" },
              task: { type: "string" },
              labels: { type: "array", items: { type: "string" } },
              maxLength: { type: "integer" },
              parameters: { type: "integer" },
              endpoints: { type: "array", items: { type: "string" } },
              loaded: { type: "boolean" },
            },
          },
        },
      },
    },
  },
} as const;

export const CLASSIFY_SCHEMA = {
  summary: "classify texts (or pairs of texts): the label and every label's probability",
  params: name,
  body: { type: "object", required: ["texts"], additionalProperties: false, properties: { texts, pairs: { ...texts, description: "second texts of pairs, one per text" } } },
  response: {
    200: {
      type: "object",
      properties: {
        model: { type: "string" },
        results: { type: "array", items: { type: "object", properties: { label: { type: "string" }, probabilities: { type: "object", additionalProperties: { type: "number" } }, truncated } } },
      },
    },
    ...errors,
  },
} as const;

const entity = {
  type: "object",
  properties: {
    type: { type: "string" },
    text: { type: "string" },
    start: { type: "integer", description: "first word" },
    end: { type: "integer", description: "word after the last" },
    char_start: { type: "integer", description: "first character (UTF-16 units)" },
    char_end: { type: "integer", description: "character after the last" },
    score: { type: "number" },
  },
} as const;

export const TOKENS_SCHEMA = {
  summary: "named entities in texts, with their word and character offsets",
  params: name,
  body: { type: "object", required: ["texts"], additionalProperties: false, properties: { texts } },
  response: {
    200: { type: "object", properties: { model: { type: "string" }, results: { type: "array", items: { type: "object", properties: { entities: { type: "array", items: entity }, truncated } } } } },
    ...errors,
  },
} as const;

const qa = { type: "object", required: ["question", "context"], additionalProperties: false, properties: { question: text, context: text } } as const;
const answer = {
  type: "object",
  properties: {
    answer: { type: "string", description: "the span of the context; empty: no answer (SQuAD 2.0 models)" },
    score: { type: "number" },
    offsets: { type: ["array", "null"], items: { type: "integer" }, description: "[start, end) in the context (UTF-16 units)" },
    truncated,
  },
} as const;

export const ANSWER_SCHEMA = {
  summary: "answer a question from its context (one {question, context}, or a list of them)",
  params: name,
  body: { oneOf: [qa, { type: "array", items: qa, minItems: 1, maxItems: MAX_ITEMS }] },
  response: {
    200: { type: "object", properties: { model: { type: "string" }, results: { type: "array", items: answer } } },
    ...errors,
  },
} as const;

export const GENERATE_SCHEMA = {
  summary: "continue a prompt (causal LM) or answer it (encoder-decoder); stream: server-sent events of text, then a done event",
  params: name,
  body: {
    type: "object",
    required: ["prompt"],
    additionalProperties: false,
    properties: {
      prompt: text,
      maxNewTokens: { type: "integer", minimum: 0, maximum: 4096 },
      numBeams: { type: "integer", minimum: 1, maximum: 16 },
      doSample: { type: "boolean" },
      temperature: { type: "number", exclusiveMinimum: 0 },
      topK: { type: "integer", minimum: 0 },
      topP: { type: "number", exclusiveMinimum: 0, maximum: 1 },
      repetitionPenalty: { type: "number", exclusiveMinimum: 0 },
      seed: { type: "integer", minimum: 0 },
      stream: { type: "boolean", description: "text/event-stream: `token` events of {text}, then `done` with the whole {text, tokens}" },
    },
  },
  produces: ["application/json", "text/event-stream"],
  response: {
    200: { type: "object", properties: { model: { type: "string" }, text: { type: "string" }, tokens: { type: "integer" }, truncated } },
    ...errors,
  },
} as const;

export const EMBED_SCHEMA = {
  summary: "vectors of texts from an encoder: its last hidden state at [CLS], or the mean over the tokens",
  params: name,
  body: { type: "object", required: ["texts"], additionalProperties: false, properties: { texts, pooling: { type: "string", enum: ["cls", "mean"] } } },
  response: {
    200: { type: "object", properties: { model: { type: "string" }, vectors: { type: "array", items: { type: "array", items: { type: "number" } } }, truncated: { type: "array", items: { type: "boolean" } } } },
    ...errors,
  },
} as const;

export const METRICS_SCHEMA = { summary: "Prometheus metrics (text exposition format)", produces: ["text/plain"] } as const;
export const OPENAPI_SCHEMA = { summary: "this document" } as const;

/** One registered route as the OpenAPI builder sees it. */
export type RouteRecord = Pick<RouteOptions, "method" | "url" | "schema">;

interface OperationSchema {
  summary?: string;
  params?: { properties?: Record<string, unknown>; required?: string[] };
  body?: unknown;
  response?: Record<string, unknown>;
  produces?: string[];
}

/** ":name" -> "{name}" */
const openapiPath = (url: string): string => url.replace(/:([A-Za-z0-9_]+)/g, "{$1}");

/**
 * An OpenAPI 3.1 document of the routes: path parameters, JSON request bodies and each
 * declared response (fastify's "4xx" keys become OpenAPI's "4XX").
 */
export function openapiDocument(routes: readonly RouteRecord[], info: { title: string; version: string }): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const s = (r.schema ?? {}) as OperationSchema;
    const methods = (Array.isArray(r.method) ? r.method : [r.method]).map((m) => m.toLowerCase()).filter((m) => m !== "head");
    const parameters = Object.entries(s.params?.properties ?? {}).map(([n, schema]) => ({ name: n, in: "path", required: true, schema }));
    const produces = s.produces ?? ["application/json"];
    const responses: Record<string, unknown> = {};
    for (const [code, schema] of Object.entries(s.response ?? { 200: {} })) {
      const key = code.replace(/xx$/, "XX");
      responses[key] = {
        description: key === "200" ? "success" : key.startsWith("4") ? "invalid request (401, 404, 413, 422, 429 with Retry-After)" : "server error (503 not ready, 504 timed out)",
        content: Object.fromEntries((key === "200" ? produces : ["application/json"]).map((type) => [type, type === "application/json" ? { schema } : {}])),
      };
    }
    for (const method of methods) {
      paths[openapiPath(r.url)] ??= {};
      paths[openapiPath(r.url)]![method] = {
        ...(s.summary ? { summary: s.summary } : {}),
        ...(parameters.length ? { parameters } : {}),
        ...(s.body ? { requestBody: { required: true, content: { "application/json": { schema: s.body } } } } : {}),
        responses,
      };
    }
  }
  return {
    openapi: "3.1.0",
    info,
    components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" }, apiKey: { type: "apiKey", in: "header", name: "x-api-key" } } },
    paths,
  };
}
