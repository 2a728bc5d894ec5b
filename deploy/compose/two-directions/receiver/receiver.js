// A stand-in for a legacy HTTP endpoint: it accepts the POSTs of Ferry B,
// verifies each Standard Webhooks signature with the official library
// (`standardwebhooks` on npm) and logs one line per change. A request whose
// signature does not verify gets 401, which Ferry treats as permanent and
// dead-letters with the answer (`ferry dlq list`).
//
//   WEBHOOK_SECRET=whsec_... PORT=8081 node receiver.js
const http = require("node:http");
const { Webhook } = require("standardwebhooks");

const secret = process.env.WEBHOOK_SECRET;
if (!secret) {
  console.error("WEBHOOK_SECRET is not set (a whsec_ secret, the one Ferry B signs with)");
  process.exit(2);
}
const wh = new Webhook(secret);
const port = Number(process.env.PORT || 8081);
const seen = new Set(); // CloudEvent ids: at-least-once delivery repeats some
const versions = new Map(); // row -> last version logged

http
  .createServer((req, res) => {
    if (req.method === "GET") {
      res.writeHead(200).end("ok\n"); // the compose healthcheck
      return;
    }
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      try {
        wh.verify(body, req.headers);
      } catch (e) {
        console.log(`REJECTED webhook-id=${req.headers["webhook-id"]}: ${e.message}`);
        res.writeHead(401).end("signature does not verify\n");
        return;
      }
      const id = req.headers["ce-id"];
      if (seen.has(id)) {
        console.log(`duplicate ${id} (redelivered after a restart; ignored)`);
        res.writeHead(204).end();
        return;
      }
      seen.add(id);
      let change = {};
      try {
        change = JSON.parse(body);
      } catch {
        // not a row change: log it as it came
      }
      const row = `${change.table}/${JSON.stringify(change.pk)}`;
      const version = (change.after || change.before || {}).version;
      const prev = versions.get(row);
      const order = prev !== undefined && version < prev ? " OUT OF ORDER" : "";
      versions.set(row, version);
      console.log(`verified ${req.headers["ce-type"]} ${row} version=${version}${order}`);
      res.writeHead(204).end();
    });
  })
  .listen(port, () => console.log(`legacy receiver on :${port}, verifying Standard Webhooks signatures`));
