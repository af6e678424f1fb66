// Internal gateway hook (message:received): hands every inbound WhatsApp
// message to `openclaw-lead record`, the same code the collection's modules
// use. The event goes to the command's stdin as JSON, never into a command
// line, so a customer's name or text is only ever data. The agent must not
// wait for bookkeeping: the child is detached and not awaited, and nothing
// here throws.
//
// CommonJS on purpose: the gateway imports the file by URL and calls its
// default export, which for a CommonJS module is module.exports on every Node
// release, while ES module syntax in a .js file needs Node's newer syntax
// detection or a package.json the hook loader does not expect.
"use strict";

const { spawn } = require("node:child_process");

const COMMAND = "openclaw-lead";
// A stuck database connection must not leave processes behind.
const TIMEOUT_MS = 30000;

function logLine(level, msg, extra = {}) {
  console.error(JSON.stringify({ ts: new Date().toISOString(), level, src: "openclaw-lead-hook", msg, ...extra }));
}

module.exports = async function recordInboundMessage(event) {
  if (event?.type !== "message" || event?.action !== "received") return;
  if (event.context?.channelId !== "whatsapp") return;
  try {
    const child = spawn(COMMAND, ["record"], { stdio: ["pipe", "ignore", "inherit"], detached: true });
    const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
    timer.unref();
    child.on("error", (error) => logLine("error", `${COMMAND} did not start`, { error: String(error) }));
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (code) logLine("warn", `${COMMAND} record exited with ${code}`, { messageId: event.context.messageId });
    });
    child.stdin.on("error", () => {});
    child.stdin.end(
      JSON.stringify({
        type: event.type,
        action: event.action,
        sessionKey: event.sessionKey,
        timestamp: event.timestamp,
        context: event.context,
      }),
    );
    child.unref();
  } catch (error) {
    logLine("error", "could not hand the message over", { error: String(error) });
  }
};
