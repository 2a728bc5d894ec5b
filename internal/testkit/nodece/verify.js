// verify.js checks Standard Webhooks signatures with the official
// `standardwebhooks` npm library (a verifier Ferry did not write). It reads
// {secret, requests: [{headers, body}]} on stdin (body base64) and prints a
// JSON array with, for each request, "" when the library accepted it or the
// library's error message when it refused it.
const { Webhook } = require("standardwebhooks");

let input = "";
process.stdin.on("data", (c) => (input += c));
process.stdin.on("end", () => {
  const { secret, requests } = JSON.parse(input);
  const wh = new Webhook(secret);
  const out = requests.map((req) => {
    try {
      wh.verify(Buffer.from(req.body, "base64").toString("utf8"), req.headers);
      return "";
    } catch (e) {
      return String(e.message || e);
    }
  });
  process.stdout.write(JSON.stringify(out));
});
