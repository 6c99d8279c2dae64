// The console's JavaScript SHA-256 / HMAC-SHA256 (used to sign when the page
// is not a secure context and WebCrypto is absent) against node's crypto.
//   node sha256_check.mjs WEB_CONSOLE_APP_JS
import crypto from "node:crypto";
import fs from "node:fs";

const src = fs.readFileSync(process.argv[2], "utf8");
const body = src.slice(src.indexOf("function sha256js"), src.indexOf("async function sha256("));
const { sha256js, hmacjs } = new Function(`${body}; return { sha256js, hmacjs };`)();
const enc = new TextEncoder();
let bad = 0;
for (const len of [0, 1, 3, 55, 56, 63, 64, 65, 119, 1000, 70000]) {
  const m = "a1".repeat(len).slice(0, len);
  for (const key of ["k", "k".repeat(64), "k".repeat(70)]) {
    const got = Buffer.from(hmacjs(enc.encode(key), enc.encode(m))).toString("hex");
    if (got !== crypto.createHmac("sha256", key).update(m).digest("hex")) { bad++; console.log(`FAIL hmac len ${len} key ${key.length}`); }
  }
  if (Buffer.from(sha256js(enc.encode(m))).toString("hex") !== crypto.createHash("sha256").update(m).digest("hex")) {
    bad++;
    console.log(`FAIL sha256 len ${len}`);
  }
}
console.log(bad ? `${bad} mismatches` : "ok   the JavaScript SHA-256 and HMAC-SHA256 fallback agree with node's crypto");
process.exit(bad ? 1 : 0);
