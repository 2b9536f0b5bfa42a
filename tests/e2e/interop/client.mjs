#!/usr/bin/env node
// A BEDS RPC client written only from the README's protocol section (v1), to prove that a
// non-Python service can talk to a BEDS node.
//
//   node client.mjs CALLS.json [--url AMQP_URL] [--exchange NAME] [--timeout-ms N]
//
// CALLS.json is a JSON array of {template, op, params, limit?, offset?}. Every call is published
// at once on one channel; replies come back over direct reply-to and are matched by
// correlation_id. stdout: a JSON array of the reply bodies, in call order (error replies
// included: {"ok": false, ...} is a reply, not a failure of this client).
// Exit 1, with the reason on stderr, when the broker is unreachable, a request cannot be routed,
// or a reply does not arrive in time; exit 2 on bad usage.
// Defaults: BEDS_AMQP_URL, BEDS_EXCHANGE (else "beds"), BEDS_TIMEOUT_MS (else 10000).

import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import amqp from "amqplib";

const REPLY_TO = "amq.rabbitmq.reply-to";

class UsageError extends Error {}

function options() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      url: { type: "string", default: process.env.BEDS_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672/" },
      exchange: { type: "string", default: process.env.BEDS_EXCHANGE ?? "beds" },
      "timeout-ms": { type: "string", default: process.env.BEDS_TIMEOUT_MS ?? "10000" },
    },
  });
  const timeoutMs = Number(values["timeout-ms"]);
  if (positionals.length !== 1 || !(timeoutMs > 0)) {
    throw new UsageError("usage: node client.mjs CALLS.json [--url URL] [--exchange NAME] [--timeout-ms N]");
  }
  return { file: positionals[0], url: values.url, exchange: values.exchange, timeoutMs };
}

async function readCalls(file) {
  const calls = JSON.parse(await readFile(file, "utf8"));
  if (!Array.isArray(calls) || !calls.every((c) => typeof c?.template === "string" && typeof c?.op === "string")) {
    throw new UsageError(`${file}: expected a JSON array of {template, op, params, limit?, offset?}`);
  }
  return calls;
}

// Never echo a password from the URL into an error message.
function redact(url) {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@");
}

async function main() {
  const { file, url, exchange, timeoutMs } = options();
  const calls = await readCalls(file);

  let conn;
  try {
    conn = await amqp.connect(url, { timeout: timeoutMs });
  } catch (err) {
    throw new Error(`cannot connect to ${redact(url)}: ${err.message}`);
  }
  const pending = new Map(); // correlation_id -> {resolve, reject, timer, name}
  const failAll = (reason) => {
    for (const p of pending.values()) p.reject(new Error(`${p.name}: ${reason}`));
  };
  // Without these listeners a lost connection or a closed channel would leave calls to time out,
  // or crash the process with an unhandled 'error' event.
  conn.on("error", (err) => failAll(`connection error: ${err.message}`));
  conn.on("close", () => failAll("connection closed before the reply arrived"));

  try {
    const channel = await conn.createChannel();
    // Publishing to an exchange that does not exist closes the channel (404 NOT_FOUND).
    channel.on("error", (err) => failAll(`channel closed: ${err.message}`));
    // mandatory + 'return': no queue bound for the routing key fails now instead of timing out.
    channel.on("return", (msg) => {
      const p = pending.get(msg.properties.correlationId);
      p?.reject(new Error(`${p.name}: no queue is bound to ${msg.fields.routingKey} on exchange ` +
        `${JSON.stringify(exchange)} (is a BEDS node serving it?)`));
    });
    // Direct reply-to: consume the pseudo-queue with no-ack on this channel BEFORE publishing.
    await channel.consume(REPLY_TO, (msg) => {
      const p = msg && pending.get(msg.properties.correlationId);
      if (!p) return; // a late reply to a call that already timed out
      try {
        p.resolve(JSON.parse(msg.content.toString("utf8")));
      } catch (err) {
        p.reject(new Error(`${p.name}: reply is not JSON: ${err.message}`));
      }
    }, { noAck: true });

    const send = (call) => new Promise((resolve, reject) => {
      const correlationId = randomUUID();
      const name = `${call.template}.${call.op}`;
      const done = (fn) => (value) => {
        clearTimeout(entry.timer);
        pending.delete(correlationId);
        fn(value);
      };
      const entry = { name, resolve: done(resolve), reject: done(reject) };
      entry.timer = setTimeout(() => entry.reject(new Error(`${name}: no reply within ${timeoutMs} ms`)), timeoutMs);
      pending.set(correlationId, entry);

      const body = { template: call.template, op: call.op, params: call.params ?? {} };
      if (call.limit !== undefined) body.limit = call.limit;   // view ops only
      if (call.offset !== undefined) body.offset = call.offset;
      channel.publish(exchange, name, Buffer.from(JSON.stringify(body)), {
        replyTo: REPLY_TO,
        correlationId,
        messageId: correlationId,
        contentType: "application/json",
        // A request no node took before we give up is dropped rather than run for nobody.
        expiration: String(timeoutMs),
        mandatory: true,
      });
    });

    // allSettled, not all: report every failed call, not only the first.
    const results = await Promise.allSettled(calls.map(send));
    const failed = results.filter((r) => r.status === "rejected").map((r) => r.reason.message);
    if (failed.length) throw new Error(failed.join("\n"));
    process.stdout.write(`${JSON.stringify(results.map((r) => r.value))}\n`);
  } finally {
    conn.removeAllListeners("close"); // closing on purpose is not a failure
    await conn.close().catch(() => {}); // already closed after a connection error
  }
}

main().catch((err) => {
  process.stderr.write(`beds interop client: ${err.message}\n`);
  process.exitCode = err instanceof UsageError ? 2 : 1;
});
