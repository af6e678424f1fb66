// Calls one internal-hook handler the way the OpenClaw gateway does: the
// module is imported by file URL, its export (default unless HOOK.md names
// another) must be a function, and it is awaited with the event. Used by the
// gateway stand-in only; the event arrives as JSON on stdin.
import { pathToFileURL } from "node:url";

const [handlerPath, exportName = "default"] = process.argv.slice(2);
let input = "";
for await (const chunk of process.stdin) input += chunk;
const event = JSON.parse(input);
// The gateway hands handlers a Date and a messages array they may push to.
event.timestamp = new Date(event.timestamp ?? Date.now());
event.messages = Array.isArray(event.messages) ? event.messages : [];

const module = await import(`${pathToFileURL(handlerPath).href}?t=${Date.now()}`);
const handler = module[exportName];
if (typeof handler !== "function") {
  console.error(`hook export "${exportName}" of ${handlerPath} is not a function`);
  process.exit(2);
}
const started = performance.now();
await handler(event);
// How long the gateway would have waited for this hook (children it left
// running may keep the stand-in's pipes open for longer).
console.log(JSON.stringify({ handlerMs: Math.round(performance.now() - started), messages: event.messages }));
