// The server's connections and the requests in flight on each, so that closing can shut every
// connection that carries none. Node's closeIdleConnections() misses a keep-alive socket that
// never carried a request (fetch opens such spares), and server.close() then waits for the
// client's keep-alive timeout.
import type { Server } from "node:http";
import type { Socket } from "node:net";

/** Counts requests in flight per socket; closeIdle() destroys the sockets with none. */
export function trackConnections(server: Server): { closeIdle(): void } {
  const inFlight = new Map<Socket, number>();
  server.on("connection", (socket: Socket) => {
    inFlight.set(socket, 0);
    socket.once("close", () => inFlight.delete(socket));
  });
  server.on("request", (req, res) => {
    const socket = req.socket;
    inFlight.set(socket, (inFlight.get(socket) ?? 0) + 1);
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      if (inFlight.has(socket)) inFlight.set(socket, inFlight.get(socket)! - 1);
    };
    res.once("finish", finish);
    res.once("close", finish);
  });
  return {
    closeIdle() {
      for (const [socket, n] of inFlight) if (n === 0) socket.destroy();
    },
  };
}
