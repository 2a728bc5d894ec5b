// receive.js reads captured HTTP requests (a JSON array of {headers, body})
// on stdin, decodes each with the CloudEvents JavaScript SDK
// (HTTP.toEvent, which validates every event against the spec's JSON
// schema) and prints a JSON array of the events it got, in order:
// {id, source, type, subject, partitionkey, datacontenttype, data_base64}
// where data_base64 holds the exact data bytes. Binary-mode header values
// are percent-decoded as the CloudEvents HTTP binding requires, because the
// SDK leaves that to the application. Any request the SDK refuses ends the
// script with status 1 and the reason on stderr.
const { HTTP } = require("cloudevents");

function decodeHeaders(headers) {
  const out = {};
  for (const [name, value] of Object.entries(headers)) {
    out[name] = name.toLowerCase().startsWith("ce-") ? decodeURIComponent(value) : value;
  }
  return out;
}

function bytesOf(event) {
  if (event.data_base64 !== undefined) return Buffer.from(event.data_base64, "base64");
  const d = event.data;
  if (d === undefined || d === null) return Buffer.alloc(0);
  if (Buffer.isBuffer(d) || d instanceof Uint8Array) return Buffer.from(d);
  if (typeof d === "string" && !/json/.test(event.datacontenttype || "application/json")) return Buffer.from(d, "utf8");
  return Buffer.from(JSON.stringify(d), "utf8");
}

let input = "";
process.stdin.on("data", (c) => (input += c));
process.stdin.on("end", () => {
  const out = [];
  for (const req of JSON.parse(input)) {
    let got;
    try {
      const raw = Buffer.from(req.body, "base64");
      const ct = String(req.headers["content-type"] || "");
      const body = ct.includes("cloudevents") ? raw.toString("utf8") : raw;
      got = HTTP.toEvent({ headers: decodeHeaders(req.headers), body });
    } catch (e) {
      console.error("request refused by the CloudEvents SDK:", e.message, JSON.stringify(e.errors || ""));
      process.exit(1);
    }
    for (const e of Array.isArray(got) ? got : [got]) {
      e.validate();
      out.push({
        id: e.id, source: e.source, type: e.type, subject: e.subject,
        partitionkey: e.partitionkey === undefined ? undefined : String(e.partitionkey),
        datacontenttype: e.datacontenttype, data_base64: bytesOf(e).toString("base64"),
      });
    }
  }
  process.stdout.write(JSON.stringify(out));
});
