/**
 * The floor for the subscription flood (bench/subscribe.ts): a bare `ws` server in its own process that
 * speaks just enough graphql-transport-ws for the flood: it acknowledges connection_init, parses every
 * message, keeps each subscribe's id until its complete, and answers the pacing query with next and
 * complete. What it costs is what the sockets, framing and JSON of the flood cost any server.
 */
import { WebSocketServer } from "ws";

const wss = new WebSocketServer({ port: 0, host: "127.0.0.1", path: "/graphql" });
wss.on("connection", (socket) => {
  const open = new Map<string, string>();
  socket.on("message", (data) => {
    const msg = JSON.parse(String(data)) as { type: string; id?: string; payload?: { query?: string } };
    if (msg.type === "connection_init") socket.send(JSON.stringify({ type: "connection_ack" }));
    else if (msg.type === "subscribe" && msg.payload?.query === "{ __typename }") {
      socket.send(JSON.stringify({ id: msg.id, type: "next", payload: { data: { __typename: "Query" } } }));
      socket.send(JSON.stringify({ id: msg.id, type: "complete" }));
    } else if (msg.type === "subscribe") open.set(msg.id!, msg.payload?.query ?? "");
    else if (msg.type === "complete") open.delete(msg.id!);
  });
});
wss.on("listening", () => console.log(JSON.stringify({ port: (wss.address() as { port: number }).port })));
