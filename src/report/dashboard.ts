// `lmforge dashboard`: a small local web app (fastify, bound to 127.0.0.1 unless told) over run
// folders. GET / lists the runs (the folders given, or the run folders found under the root),
// GET /run/:id is the run's report page, the same renderer and charts as report.html, and
// GET /events/:id streams the lines appended to its metrics.jsonl as server-sent events
// (`record` events, each with its byte offset as the event id so that a reconnecting browser
// resumes where it left off; `reset` when the log was cut back or replaced). The page appends
// each record to its charts. Everything is served from the package: uPlot is read from
// node_modules and inlined, nothing comes from a CDN, and the server reads only the run
// folders it lists (an id names a listed folder, never a path).
import Fastify from "fastify";
import type { FastifyInstance } from "fastify";
import type { ServerResponse } from "node:http";
import { existsSync, statSync } from "node:fs";
import { basename, join, relative, resolve } from "node:path";
import { defineOptions } from "../io/options.js";
import { findRuns, isRunDir, readRun } from "./run.js";
import type { RunData } from "./run.js";
import { renderRunList, renderRunReport } from "./html.js";
import { JsonlFollower } from "./follow.js";

/** The dashboard's options, declared once: `lmforge dashboard` makes its flags from these. */
export const DASHBOARD_OPTIONS = defineOptions([
  { flag: "port", key: "port", type: "int", min: 0, max: 65535, default: 8765, help: "TCP port (0: any free one)" },
  { flag: "host", key: "host", type: "string", default: "127.0.0.1", help: "address to listen on (0.0.0.0: every interface; the runs' data is then open to the network)" },
  { flag: "poll-ms", key: "pollMs", type: "int", min: 50, default: 1000, arg: "MS", help: "look at followed logs at least this often (file watching is not reliable everywhere)" },
  { flag: "depth", key: "depth", type: "int", min: 0, max: 10, default: 3, help: "how many folder levels below the current folder (or a given folder that is no run) to look for runs" },
] as const);

export interface DashboardOptions {
  /** Run folders, or folders to search for runs; default the current folder. */
  dirs?: readonly string[];
  /** How deep to search a folder that is not itself a run (default 3). */
  depth?: number;
  pollMs?: number;
  /** Heartbeat comments on an event stream, in ms (default 15000): proxies and browsers keep it open. */
  heartbeatMs?: number;
}

/** Run folders: each given folder that is a run, and the runs found under each one that is not. */
export function dashboardRuns(dirs: readonly string[], depth = 3): string[] {
  const out: string[] = [];
  for (const d of dirs.length ? dirs : ["."]) {
    if (!existsSync(d) || !statSync(d).isDirectory()) throw new Error(`${d}: no such folder`);
    for (const r of isRunDir(d) ? [d] : findRuns(d, depth)) if (!out.includes(resolve(r))) out.push(resolve(r));
  }
  return out;
}

/** A short id for each folder, unique among them: its path below the common root, made URL-safe. */
function runIds(dirs: readonly string[], roots: readonly string[]): Map<string, string> {
  const ids = new Map<string, string>();
  const used = new Set<string>();
  for (const d of dirs) {
    const root = roots.find((r) => d === r || d.startsWith(r + "/"));
    const rel = root && d !== root ? relative(root, d) : basename(d);
    const base = rel.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "") || "run";
    let id = base;
    for (let n = 2; used.has(id); n++) id = `${base}-${n}`;
    used.add(id);
    ids.set(id, d);
  }
  return ids;
}

/** Builds the dashboard's server (not yet listening). */
export function createDashboard(o: DashboardOptions = {}): FastifyInstance {
  const given = o.dirs?.length ? o.dirs : ["."];
  const roots = given.map((d) => resolve(d));
  const app = Fastify({ logger: false });
  const streams = new Set<ServerResponse>();
  let ids = new Map<string, string>();
  // the list is made again on each visit of /, so that new runs appear
  const rescan = (): Map<string, string> => (ids = runIds(dashboardRuns(given, o.depth ?? 3), roots));
  rescan();
  const lookup = (id: string): string | undefined => ids.get(id) ?? rescan().get(id);

  const htmlHeaders = { "content-type": "text/html; charset=utf-8", "cache-control": "no-store", "x-content-type-options": "nosniff" };
  app.get("/", async (_req, reply) => {
    const list: { id: string; run: RunData }[] = [];
    for (const [id, dir] of rescan()) {
      try {
        list.push({ id, run: readRun(dir) });
      } catch {
        // a folder removed or half-written since the scan: left out of this listing
      }
    }
    list.sort((a, b) => b.run.modified - a.run.modified);
    const body = renderRunList(list, { root: roots.join(", ") });
    return reply.headers(htmlHeaders).send(body);
  });
  app.get("/favicon.ico", async (_req, reply) => reply.code(204).send());
  app.get("/api/runs", async () => [...rescan()].map(([id, dir]) => ({ id, dir })));
  app.get<{ Params: { id: string } }>("/run/:id", async (req, reply) => {
    const dir = lookup(req.params.id);
    if (!dir) return reply.code(404).type("text/plain").send(`no run "${req.params.id}"; see /`);
    // the stream starts where the page's records end: nothing missed, nothing twice
    const run = readRun(dir);
    const body = renderRunReport(run, { live: { eventsUrl: `/events/${encodeURIComponent(req.params.id)}?from=${run.logBytes}`, backUrl: "/" } });
    return reply.headers(htmlHeaders).send(body);
  });
  app.get<{ Params: { id: string }; Querystring: { from?: string } }>("/events/:id", (req, reply) => {
    const dir = lookup(req.params.id);
    if (!dir) {
      void reply.code(404).type("text/plain").send(`no run "${req.params.id}"`);
      return;
    }
    // where to start: after the last record the browser has (its Last-Event-ID on a reconnect), else the page's offset
    const lastId = Number(req.headers["last-event-id"]);
    const fromPage = Number(req.query.from);
    const from = Number.isInteger(lastId) && lastId >= 0 ? lastId : Number.isInteger(fromPage) && fromPage >= 0 ? fromPage : 0;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", connection: "keep-alive", "x-accel-buffering": "no" });
    res.write("retry: 2000\n\n");
    streams.add(res);
    const follower = new JsonlFollower(join(dir, "metrics.jsonl"), {
      from,
      ...(o.pollMs ? { pollMs: o.pollMs } : {}),
      onLine: (line, offset) => {
        try {
          JSON.parse(line); // a torn line is not sent
        } catch {
          return;
        }
        res.write(`event: record\nid: ${offset}\ndata: ${line}\n\n`);
      },
      onReset: () => res.write("event: reset\ndata: {}\n\n"),
    });
    const heartbeat = setInterval(() => res.write(": alive\n\n"), o.heartbeatMs ?? 15000);
    heartbeat.unref();
    const close = (): void => {
      follower.stop();
      clearInterval(heartbeat);
      streams.delete(res);
    };
    req.raw.on("close", close);
    res.on("close", close);
    follower.start();
  });
  // open event streams would hold close() forever: they end first
  app.addHook("preClose", async () => {
    for (const res of streams) res.end();
    streams.clear();
  });
  return app;
}
