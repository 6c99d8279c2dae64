// pipebridge console — plain JavaScript, no framework, nothing from the network
// but this server's own API.
//
// Every API call is an AWS JSON 1.1 POST / signed with SigV4 here, in the
// browser (WebCrypto's HMAC-SHA256 and SHA-256), with the access key and
// secret the user signed in with; they live in sessionStorage only. The
// server verifies each call as it verifies the AWS CLI's: the console has no
// privilege of its own.
//
// Sections: signing and calls · small DOM helpers · sign-in · routing ·
// JSON paths (parameter preview) · the Create Rule wizard · the views
// (rules, rule detail, pipelines, executions, execution, dead letters).

/* ================================================== signing and calls == */

const enc = new TextEncoder();
const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");

// WebCrypto exists only in secure contexts (https, or http on 127.0.0.1 /
// localhost). Elsewhere (http on a LAN address) a small SHA-256 in JS
// stands in, so the console still works; docs/CONSOLE.md says why https is
// better there anyway.
const subtle = globalThis.crypto && globalThis.crypto.subtle;

function sha256js(bytes) {
  const K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
    0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
    0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
    0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2]);
  const H = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
    0x5be0cd19]);
  const n = bytes.length, total = Math.ceil((n + 9) / 64) * 64;
  const m = new Uint8Array(total);
  m.set(bytes);
  m[n] = 0x80;
  const dv = new DataView(m.buffer);
  dv.setUint32(total - 8, Math.floor(n / 0x20000000));
  dv.setUint32(total - 4, (n * 8) >>> 0);
  const w = new Uint32Array(64);
  const rotr = (x, r) => (x >>> r) | (x << (32 - r));
  for (let off = 0; off < total; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = dv.getUint32(off + i * 4);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, h] = H;
    for (let i = 0; i < 64; i++) {
      const t1 = (h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      h = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += h;
  }
  const out = new Uint8Array(32);
  const odv = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) odv.setUint32(i * 4, H[i]);
  return out;
}

function hmacjs(key, msg) {
  if (key.length > 64) key = sha256js(key);
  const k = new Uint8Array(64);
  k.set(key);
  const inner = new Uint8Array(64 + msg.length), outer = new Uint8Array(96);
  for (let i = 0; i < 64; i++) { inner[i] = k[i] ^ 0x36; outer[i] = k[i] ^ 0x5c; }
  inner.set(msg, 64);
  outer.set(sha256js(inner), 64);
  return sha256js(outer);
}

async function sha256(bytes) {
  return subtle ? new Uint8Array(await subtle.digest("SHA-256", bytes)) : sha256js(bytes);
}

async function hmac(key, msg) {
  const m = enc.encode(msg);
  if (!subtle) return hmacjs(key, m);
  const k = await subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await subtle.sign("HMAC", k, m));
}

// The SigV4 Authorization of one POST / (AWS JSON 1.1). Exported for tests.
export async function signRequest(creds, service, target, body, now = new Date(), host = location.host) {
  const amzDate = now.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
  const day = amzDate.slice(0, 8);
  const payloadHash = hex(await sha256(enc.encode(body)));
  const headers = {
    "content-type": "application/x-amz-json-1.1",
    host,
    "x-amz-content-sha256": payloadHash,
    "x-amz-date": amzDate,
    "x-amz-target": target,
  };
  const names = Object.keys(headers).sort();
  const canonical = ["POST", "/", "", ...names.map((n) => `${n}:${headers[n]}`), "", names.join(";"), payloadHash]
    .join("\n");
  const scope = `${day}/${creds.region}/${service}/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, hex(await sha256(enc.encode(canonical)))].join("\n");
  let key = enc.encode("AWS4" + creds.secret);
  for (const part of [day, creds.region, service, "aws4_request"]) key = await hmac(key, part);
  const signature = hex(await hmac(key, toSign));
  return {
    "Content-Type": headers["content-type"],
    "X-Amz-Date": amzDate,
    "X-Amz-Target": target,
    "X-Amz-Content-Sha256": payloadHash,
    Authorization: `AWS4-HMAC-SHA256 Credential=${creds.accessKey}/${scope}, SignedHeaders=${names.join(";")}, ` +
      `Signature=${signature}`,
  };
}

export class ApiError extends Error {
  constructor(type, message, status) {
    super(message);
    this.type = type;
    this.status = status;
  }
}

const SERVICES = { AWSEvents: "events", SageMaker: "sagemaker", Pipebridge: "pipebridge" };

// One signed call: "AWSEvents.PutRule", {...} -> the answer's JSON, or throws ApiError.
async function call(target, input = {}, creds = session()) {
  if (!creds) throw new ApiError("NotSignedIn", "Sign in first.", 0);
  const service = SERVICES[target.split(".")[0]];
  const body = JSON.stringify(input);
  const headers = await signRequest(creds, service, target, body);
  let resp;
  try {
    resp = await fetch("/", { method: "POST", headers, body, credentials: "omit", cache: "no-store" });
  } catch (e) {
    throw new ApiError("NetworkError", `The server did not answer (${e.message}).`, 0);
  }
  const text = await resp.text();
  let out = {};
  try { out = text ? JSON.parse(text) : {}; } catch { out = { message: text }; }
  if (!resp.ok) {
    const type = (resp.headers.get("X-Amzn-ErrorType") || out.__type || "Error").split(":")[0].split("#").pop();
    throw new ApiError(type, out.message || out.Message || `HTTP ${resp.status}`, resp.status);
  }
  return out;
}

// Follows NextToken until the end (or `max` items) and returns every item of `key`.
async function callAll(target, input, key, max = 1000) {
  const items = [];
  let token;
  do {
    const out = await call(target, token ? { ...input, NextToken: token } : input);
    items.push(...(out[key] || []));
    token = out.NextToken;
  } while (token && items.length < max);
  return items;
}

/* ================================================== small DOM helpers == */

// h("p", {class: "x", onclick: f}, "text", child) — text is always text, never HTML.
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "value") el.value = v;
    else if (k === "checked") el.checked = !!v;
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const $ = (sel, root = document) => root.querySelector(sel);
const main = () => $("#main");

function announce(msg) {
  const s = $("#status");
  s.textContent = msg;
}

// A field: label, control, hint, and an error slot tied to the control.
function field(id, label, control, hint) {
  control.id = id;
  const ids = [`${id}-error`];
  if (hint) ids.push(`${id}-hint`);
  control.setAttribute("aria-describedby", ids.join(" "));
  return h("div", { class: "field", id: `${id}-field` },
    h("label", { for: id }, label),
    control,
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null,
    h("p", { class: "error", id: `${id}-error`, "aria-live": "polite" }));
}

function setErr(id, msg) {
  const slot = document.getElementById(`${id}-error`);
  const ctl = document.getElementById(id);
  if (slot) slot.textContent = msg || "";
  if (ctl) ctl.setAttribute("aria-invalid", msg ? "true" : "false");
  return !msg;
}

function fmtTime(v) {
  if (v === undefined || v === null || v === "") return "";
  const d = typeof v === "number" ? new Date(v * 1000) : new Date(v);
  if (isNaN(d)) return String(v);
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

function fmtLocal(d) {
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "long" });
}

function errorBox(e) {
  return h("div", { class: "alert", role: "alert" }, h("strong", {}, e.type || "Error"), ": ", e.message);
}

function table(headers, rows, caption) {
  return h("div", { class: "table-wrap" },
    h("table", {},
      caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: headers.length, class: "empty" }, "None.")))));
}

/* ============================================================ sign-in == */

const KEY = "pipebridge.console.session";

function session() {
  try { return JSON.parse(sessionStorage.getItem(KEY)); } catch { return null; }
}

function accountOf(arn) { return (arn || "").split(":")[4] || ""; }

async function signIn(accessKey, secret, region) {
  const creds = { accessKey, secret, region };
  // Any signed call proves the pair: the server checks the signature first.
  const out = await call("AWSEvents.ListEventBuses", {}, creds);
  const bus = (out.EventBuses || []).find((b) => b.Name === "default") || (out.EventBuses || [])[0];
  creds.account = accountOf(bus && bus.Arn);
  sessionStorage.setItem(KEY, JSON.stringify(creds));
  return creds;
}

function signInMessage(e) {
  switch (e.type) {
    case "UnrecognizedClientException":
      return "This server does not know that access key. Check the access key ID (the server's credentials file " +
        "lists the keys it accepts).";
    case "InvalidSignatureException":
      return "The secret access key is wrong for this access key: the server could not verify the signature.";
    case "InvalidSignatureException:expired":
      return e.message;
    default:
      return `${e.type}: ${e.message}`;
  }
}

function renderSignIn(reason) {
  const form = h("form", { class: "card narrow", id: "signin-form", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in to pipebridge"),
    h("p", {}, "Use an access key of this server (its data directory's credentials file). " +
      "The key stays in this tab's session storage; every call is signed in the browser."),
    reason ? h("div", { class: "alert", role: "alert", id: "signin-error" }, reason) :
      h("div", { id: "signin-error", role: "alert" }),
    field("signin-key", "Access key ID", h("input", { autocomplete: "username", required: true, spellcheck: "false" })),
    field("signin-secret", "Secret access key",
      h("input", { type: "password", autocomplete: "current-password", required: true })),
    field("signin-region", "Region", h("input", { value: "us-east-1", required: true, spellcheck: "false" }),
      "Resources are kept per account and region."),
    h("button", { type: "submit", class: "primary" }, "Sign in"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const key = $("#signin-key").value.trim(), secret = $("#signin-secret").value;
    const region = $("#signin-region").value.trim() || "us-east-1";
    const box = $("#signin-error");
    box.className = "";
    box.textContent = "";
    if (!key || !secret) {
      box.className = "alert";
      box.textContent = "Enter both the access key ID and the secret access key.";
      return;
    }
    try {
      await signIn(key, secret, region);
      showChrome();
      location.hash = "#/rules";
      route();
    } catch (e) {
      box.className = "alert";
      box.textContent = signInMessage(e);
      $("#signin-secret").focus();
    }
  });
  main().replaceChildren(form);
  $("#signin-key").focus();
}

function showChrome() {
  const s = session();
  $("#nav").hidden = !s;
  $("#who").hidden = !s;
  $("#signout").hidden = !s;
  if (s) $("#who").textContent = `${s.accessKey} · ${s.account || "?"} · ${s.region}`;
}

/* ============================================================ routing == */

let timers = [];
let leaveGuard = null; // a function answering a message when leaving would lose something

function clearTimers() {
  for (const t of timers) clearInterval(t);
  timers = [];
}

async function route() {
  clearTimers();
  showChrome();
  if (!session()) return renderSignIn();
  const parts = location.hash.replace(/^#\/?/, "").split("?")[0].split("/").map(decodeURIComponent);
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.getAttribute("href") === `#/${parts[0] || "rules"}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const view = {
    "": viewRules, rules: viewRules, rule: viewRule, create: viewCreate, pipelines: viewPipelines,
    executions: viewExecutions, execution: viewExecution, "dead-letters": viewDeadLetters,
  }[parts[0]] || viewRules;
  main().replaceChildren(h("p", { class: "loading" }, "Loading…"));
  try {
    await view(...parts.slice(1));
  } catch (e) {
    if (e.type === "UnrecognizedClientException" || e.type === "InvalidSignatureException") {
      sessionStorage.removeItem(KEY);
      return renderSignIn(signInMessage(e));
    }
    main().replaceChildren(errorBox(e));
  }
  const h1 = $("main h1");
  if (h1 && document.activeElement === document.body) h1.setAttribute("tabindex", "-1");
}

window.addEventListener("hashchange", (ev) => {
  const msg = leaveGuard && leaveGuard();
  if (msg && !confirm(msg)) {
    history.replaceState(null, "", new URL(ev.oldURL).hash);
    return;
  }
  leaveGuard = null;
  route().then(() => { const h1 = $("main h1"); if (h1) { h1.tabIndex = -1; h1.focus(); } });
});
window.addEventListener("beforeunload", (ev) => {
  if (leaveGuard && leaveGuard()) { ev.preventDefault(); ev.returnValue = ""; }
});

/* ========================================== JSON paths (the preview) == */

// The subset of src/bus/jsonpath.c: $, .name, ['any'] / ["any"], [N], .*, [*].
// Answers {ok:false, error} for a path the server would refuse, else
// {ok:true, found, value}.
export function evalPath(path, doc) {
  if (typeof path !== "string" || path[0] !== "$") return { ok: false, error: "A JSON path starts with $." };
  if (path.length > 1024) return { ok: false, error: "A JSON path has at most 1024 characters." };
  const segs = [];
  let i = 1, wild = false;
  while (i < path.length) {
    const rest = path.slice(i);
    let m;
    if ((m = /^\.\*/.exec(rest)) || (m = /^\[\*\]/.exec(rest))) { segs.push({ wild: true }); wild = true; }
    else if ((m = /^\.([A-Za-z0-9_/-]+)/.exec(rest))) segs.push({ key: m[1] });
    else if ((m = /^\['([^']*)'\]/.exec(rest)) || (m = /^\["([^"]*)"\]/.exec(rest))) segs.push({ key: m[1] });
    else if ((m = /^\[([0-9]{1,9})\]/.exec(rest))) segs.push({ index: Number(m[1]) });
    else return { ok: false, error: `Not a JSON path pipebridge reads: unexpected '${rest.slice(0, 12)}'.` };
    i += m[0].length;
  }
  let nodes = [doc];
  for (const s of segs) {
    const next = [];
    for (const n of nodes) {
      if (s.wild) {
        if (Array.isArray(n)) next.push(...n);
        else if (n && typeof n === "object") next.push(...Object.values(n));
      } else if (s.key !== undefined) {
        if (n && typeof n === "object" && !Array.isArray(n) && Object.hasOwn(n, s.key)) next.push(n[s.key]);
      } else if (Array.isArray(n) && s.index < n.length) next.push(n[s.index]);
    }
    nodes = next;
  }
  if (!nodes.length) return { ok: true, found: false };
  return { ok: true, found: true, value: wild ? nodes : nodes[0] };
}

// What a pipeline parameter receives: a string as it is, anything else as compact JSON.
function paramText(v) { return typeof v === "string" ? v : JSON.stringify(v); }

function isPath(v) { return evalPath(v, {}).ok; }

/* ============================================== the Create Rule wizard == */

const STEPS = ["Name and description", "Rule type", "Event bus", "Targets", "Execution role", "Tags",
  "Review and create"];
const MAX_TARGETS = 5;
const NAME_RE = /^[.\-_A-Za-z0-9]+$/;
const ROLE_RE = /^arn:aws[a-z-]*:iam::\d{12}:role\/?[a-zA-Z_0-9+=,.@\-_/]+$/;
const PARAM_RE = /^[a-zA-Z0-9](-*[a-zA-Z0-9])*$/;

function coral(value, at, constraint) {
  const shown = value === null ? "null" : `'${value}'`;
  return `1 validation error detected: Value ${shown} at '${at}' failed to satisfy constraint: ${constraint}`;
}

function samples() {
  const s = session() || {};
  const acc = s.account || "000000000000", reg = s.region || "us-east-1";
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
  const base = (dt, src, resources, detail) => ({
    version: "0", id: "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111", "detail-type": dt, source: src, account: acc,
    time: now, region: reg, resources, detail,
  });
  const pipe = `arn:aws:sagemaker:${reg}:${acc}:pipeline/my-pipeline`;
  return {
    "sagemaker-pipeline": {
      label: "SageMaker pipeline execution status change",
      event: base("SageMaker Model Building Pipeline Execution Status Change", "aws.sagemaker",
        [pipe, `${pipe}/execution/abcdef123456`], {
          pipelineExecutionDisplayName: "execution-1700000000000", currentPipelineExecutionStatus: "Succeeded",
          previousPipelineExecutionStatus: "Executing", executionStartTime: now, executionEndTime: now,
          pipelineArn: pipe, pipelineExecutionArn: `${pipe}/execution/abcdef123456`,
        }),
    },
    "s3-object-created": {
      label: "S3 Object Created",
      event: base("Object Created", "aws.s3", ["arn:aws:s3:::example-bucket"], {
        version: "0", bucket: { name: "example-bucket" },
        object: { key: "data/input.csv", size: 5, etag: "b1946ac92492d2347c6235b4d2611184", sequencer: "00617F08299329D189" },
        "request-id": "N4N7GDK58NMKJ12R", requester: acc, "source-ip-address": "203.0.113.15", reason: "PutObject",
      }),
    },
    "sagemaker-endpoint": {
      label: "SageMaker endpoint status change",
      event: base("SageMaker Endpoint State Change", "aws.sagemaker",
        [`arn:aws:sagemaker:${reg}:${acc}:endpoint/my-endpoint`], {
          EndpointName: "my-endpoint", EndpointArn: `arn:aws:sagemaker:${reg}:${acc}:endpoint/my-endpoint`,
          EndpointConfigName: "my-endpoint-config", EndpointStatus: "IN_SERVICE",
          CreationTime: 1700000000000, LastModifiedTime: 1700000600000,
        }),
    },
    custom: {
      label: "Custom event",
      event: base("order.created", "com.example.orders", [], {
        orderId: "o-123", amount: 42, customer: { id: "c-9", tier: "gold" },
      }),
    },
  };
}

function scheduledEvent(W) {
  const s = session() || {};
  return {
    version: "0", id: "a1b2c3d4-5678-90ab-cdef-EXAMPLE22222", "detail-type": "Scheduled Event", source: "aws.events",
    account: s.account || "000000000000", time: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
    region: s.region || "us-east-1",
    resources: [`arn:aws:events:${s.region}:${s.account}:rule/${W.name || "RULE"}`], detail: {},
  };
}

function newTarget(i) {
  return { id: `Target${i + 1}-${Math.random().toString(36).slice(2, 7)}`, kind: "pipeline", pipeline: "", arn: "",
    params: [], retry: "185", age: "86400", dlq: "" };
}

function randomSuffix() { return Math.random().toString(36).slice(2, 8); }

function generatedRole(W) {
  const acc = (session() || {}).account || "000000000000";
  return `arn:aws:iam::${acc}:role/pipebridge-${(W.name || "rule").slice(0, 40)}-${W.roleSuffix}`;
}

let W = null; // the wizard's state, kept while the user moves between views

function freshWizard(bus) {
  const smp = samples();
  return {
    step: 0, reached: 0, name: "", description: "", type: "pattern", sampleKey: "sagemaker-pipeline",
    sample: JSON.stringify(smp["sagemaker-pipeline"].event, null, 2),
    pattern: JSON.stringify({ source: ["aws.sagemaker"],
      "detail-type": ["SageMaker Model Building Pipeline Execution Status Change"] }, null, 2),
    schedKind: "rate", rateValue: "5", rateUnit: "minutes", cron: "0 12 * * ? *", bus: bus || "default",
    targets: [newTarget(0)], roleMode: "new", roleArn: "", roleSuffix: randomSuffix(), tags: [],
    ruleCreated: null, // {name, bus} once PutRule succeeded and the targets are not yet in
  };
}

function scheduleExpression(W) {
  return W.schedKind === "rate" ? `rate(${W.rateValue.trim()} ${W.rateUnit})` : `cron(${W.cron.trim()})`;
}

function sampleDoc(W) {
  if (W.type === "schedule") return scheduledEvent(W);
  try { return JSON.parse(W.sample); } catch { return null; }
}

let pipelinesCache = null;

async function viewCreate() {
  if (!W) W = freshWizard(new URLSearchParams(location.hash.split("?")[1] || "").get("bus"));
  const buses = await callAll("AWSEvents.ListEventBuses", {}, "EventBuses");
  pipelinesCache = await callAll("SageMaker.ListPipelines", { SortBy: "Name", SortOrder: "Ascending" },
    "PipelineSummaries");
  leaveGuard = () => W && W.ruleCreated ?
    `The rule ${W.ruleCreated.name} was created but its targets were not. Leave it half-created?` : null;

  const stepNav = h("nav", { "aria-label": "Wizard steps", class: "steps" },
    h("ol", {}, STEPS.map((s, i) => h("li", {},
      h("button", { type: "button", class: "step-link", id: `step-link-${i}`, "data-step": i,
        onclick: () => go(i) }, `${i + 1}. ${s}`)))));
  const panel = h("section", { id: "wizard-panel", class: "card", "aria-labelledby": "wizard-step-title" });
  const actions = h("div", { class: "actions" },
    h("button", { type: "button", id: "wizard-back", onclick: () => go(W.step - 1) }, "Back"),
    h("button", { type: "button", id: "wizard-next", class: "primary", onclick: next }, "Next"),
    h("button", { type: "button", id: "wizard-create", class: "primary", onclick: create }, "Create rule"),
    h("button", { type: "button", id: "wizard-reset", class: "link", onclick: () => {
      if (W.ruleCreated && !confirm(leaveGuard())) return;
      W = freshWizard(); leaveGuard = null; viewCreate();
    } }, "Start over"));
  main().replaceChildren(h("h1", {}, "Create rule"), h("div", { class: "wizard" }, stepNav,
    h("div", { class: "wizard-body" }, h("div", { id: "wizard-banner" }), panel, actions)));

  // a field being corrected loses its error at once (the step re-checks on Next)
  panel.addEventListener("input", (ev) => {
    const id = ev.target.id;
    if (id && ev.target.getAttribute("aria-invalid") === "true" && !/^rule-name$/.test(id)) setErr(id, "");
  });

  function renderBanner() {
    const b = $("#wizard-banner");
    if (!W.ruleCreated) return b.replaceChildren();
    b.replaceChildren(h("div", { class: "alert", role: "alert", id: "half-created" },
      h("p", {}, h("strong", {}, "The rule was created, but its targets were not. "),
        `Rule ${W.ruleCreated.name} exists on event bus ${W.ruleCreated.bus} with no targets: `,
        "fix the targets and choose Create rule again (only the targets are sent), or delete the rule."),
      h("button", { type: "button", id: "delete-half", onclick: async () => {
        try {
          await call("AWSEvents.DeleteRule", { Name: W.ruleCreated.name, EventBusName: W.ruleCreated.bus });
          announce(`Rule ${W.ruleCreated.name} deleted.`);
          W.ruleCreated = null;
          renderBanner();
        } catch (e) { b.append(errorBox(e)); }
      } }, `Delete rule ${W.ruleCreated.name}`)));
  }

  function go(i) {
    if (i < 0 || i >= STEPS.length || i > W.reached) return;
    W.step = i;
    render();
    $("#wizard-step-title").focus();
  }

  async function next() {
    const btn = $("#wizard-next");
    btn.disabled = true;
    try {
      if (await validateStep(W.step)) {
        W.step++;
        W.reached = Math.max(W.reached, W.step);
        render();
        $("#wizard-step-title").focus();
      } else {
        const bad = panel.querySelector("[aria-invalid=true]");
        if (bad) bad.focus();
      }
    } finally { btn.disabled = false; }
  }

  function render() {
    for (const b of stepNav.querySelectorAll("button")) {
      const i = Number(b.dataset.step);
      b.disabled = i > W.reached;
      if (i === W.step) b.setAttribute("aria-current", "step"); else b.removeAttribute("aria-current");
    }
    $("#wizard-back").hidden = W.step === 0;
    $("#wizard-next").hidden = W.step === STEPS.length - 1;
    // once the review was reached, Create is offered on every step (fix a field, create again)
    $("#wizard-create").hidden = W.reached !== STEPS.length - 1;
    panel.replaceChildren(h("h2", { id: "wizard-step-title", tabindex: "-1" },
      `Step ${W.step + 1} of ${STEPS.length}: ${STEPS[W.step]}`), ...[stepName, stepType, stepBus, stepTargets,
      stepRole, stepTags, stepReview][W.step]());
    renderBanner();
  }

  const bind = (el, key, after) => {
    el.addEventListener("input", () => { W[key] = el.type === "checkbox" ? el.checked : el.value; after && after(); });
    el.addEventListener("change", () => { W[key] = el.value; after && after(); });
    return el;
  };

  /* ---- step 1 */
  function stepName() {
    const name = bind(h("input", { value: W.name, maxlength: 64, spellcheck: "false", autocomplete: "off" }), "name",
      () => checkName(false));
    const desc = bind(h("textarea", { rows: 2 }), "description", () => checkDesc());
    desc.value = W.description;
    return [field("rule-name", "Name", name,
      "Up to 64 letters, digits, dots, hyphens and underscores; unique on its event bus."),
    field("rule-description", "Description (optional)", desc, "Up to 512 characters.")];
  }
  function checkName() {
    const n = W.name;
    let msg = "";
    if (!n.length) msg = coral(null, "name", "Member must not be null");
    else if ([...n].length > 64) msg = coral(n, "name", "Member must have length less than or equal to 64");
    else if (!NAME_RE.test(n)) msg = coral(n, "name", "Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+");
    return setErr("rule-name", msg);
  }
  function checkDesc() {
    return setErr("rule-description", [...W.description].length > 512 ?
      coral(W.description, "description", "Member must have length less than or equal to 512") : "");
  }

  /* ---- step 2 */
  function stepType() {
    const onDefault = W.bus === "default";
    const radios = h("fieldset", {}, h("legend", {}, "Rule type"),
      h("div", { class: "radio" }, bind(h("input", { type: "radio", name: "rule-type", id: "type-pattern",
        value: "pattern", checked: W.type === "pattern" }), "type", render),
      h("label", { for: "type-pattern" }, "Rule with an event pattern")),
      h("div", { class: "radio" }, bind(h("input", { type: "radio", name: "rule-type", id: "type-schedule",
        value: "schedule", checked: W.type === "schedule", disabled: !onDefault,
        "aria-describedby": "type-schedule-note" }), "type", render),
      h("label", { for: "type-schedule" }, "Schedule")),
      onDefault ? null : h("p", { class: "error", id: "type-schedule-note" },
        `ScheduleExpression is supported only on the default event bus. (This rule is for event bus ${W.bus}.)`));
    return [radios, ...(W.type === "pattern" ? patternPart() : schedulePart())];
  }

  function patternPart() {
    const smp = samples();
    const pick = h("select", {}, Object.entries(smp).map(([k, v]) =>
      h("option", { value: k, selected: k === W.sampleKey }, v.label)));
    pick.addEventListener("change", () => {
      W.sampleKey = pick.value;
      W.sample = JSON.stringify(smp[pick.value].event, null, 2);
      $("#sample-event").value = W.sample;
    });
    const sample = bind(h("textarea", { rows: 14, spellcheck: "false", class: "code" }), "sample");
    sample.value = W.sample;
    const pattern = bind(h("textarea", { rows: 10, spellcheck: "false", class: "code" }), "pattern");
    pattern.value = W.pattern;
    const fromSample = h("button", { type: "button", id: "pattern-from-sample", onclick: () => {
      try {
        const ev = JSON.parse(W.sample);
        W.pattern = JSON.stringify({ source: [ev.source], "detail-type": [ev["detail-type"]] }, null, 2);
        $("#event-pattern").value = W.pattern;
      } catch { setErr("sample-event", "The sample event is not valid JSON."); }
    } }, "Start the pattern from this event");
    return [
      h("div", { class: "two" },
        h("div", {}, field("sample-type", "Sample event", pick, "Edit it freely: it is only used to test."),
          field("sample-event", "Sample event (JSON)", sample), fromSample),
        h("div", {}, field("event-pattern", "Event pattern (JSON)", pattern),
          h("button", { type: "button", id: "test-pattern", onclick: testPattern }, "Test pattern"),
          h("div", { id: "test-result", "aria-live": "polite" }))),
    ];
  }

  async function testPattern() {
    const out = $("#test-result");
    out.replaceChildren();
    setErr("event-pattern", "");
    setErr("sample-event", "");
    try {
      const r = await call("AWSEvents.TestEventPattern", { EventPattern: W.pattern, Event: W.sample });
      if (r.Result) {
        out.replaceChildren(h("p", { class: "ok", id: "test-verdict" }, "The sample event matches the pattern."));
        return true;
      }
      const ex = await call("Pipebridge.ExplainEventPattern", { EventPattern: W.pattern, Event: W.sample });
      out.replaceChildren(h("p", { class: "bad", id: "test-verdict" }, "The sample event does not match the pattern."),
        h("p", {}, "Why, from the engine:"),
        h("pre", { id: "test-explanation", class: "code" }, ex.Explanation || JSON.stringify(ex.Mismatches, null, 2)));
      return true;
    } catch (e) {
      placePatternError(e);
      return false;
    }
  }

  function placePatternError(e) {
    if (/Event is not valid|at 'event'/.test(e.message)) setErr("sample-event", e.message);
    else setErr("event-pattern", e.message);
  }

  function schedulePart() {
    const kind = h("fieldset", {}, h("legend", {}, "Schedule pattern"),
      h("div", { class: "radio" }, bind(h("input", { type: "radio", name: "sched-kind", id: "sched-rate", value: "rate",
        checked: W.schedKind === "rate" }), "schedKind", render), h("label", { for: "sched-rate" },
        "A schedule that runs at a regular rate (rate)")),
      h("div", { class: "radio" }, bind(h("input", { type: "radio", name: "sched-kind", id: "sched-cron", value: "cron",
        checked: W.schedKind === "cron" }), "schedKind", render), h("label", { for: "sched-cron" },
        "A fine-grained schedule (cron)")));
    let inputs;
    if (W.schedKind === "rate") {
      const unit = bind(h("select", {}, ["minutes", "hours", "days", "minute", "hour", "day"].map((u) =>
        h("option", { value: u, selected: u === W.rateUnit }, u))), "rateUnit", previewSoon);
      inputs = h("div", { class: "row" },
        field("rate-value", "Every", bind(h("input", { value: W.rateValue, inputmode: "numeric", size: 6 }), "rateValue",
          previewSoon)),
        field("rate-unit", "Unit", unit));
    } else {
      inputs = field("cron-expression", "Cron expression",
        bind(h("input", { value: W.cron, spellcheck: "false", class: "code" }), "cron", previewSoon),
        "Six fields, in UTC: minutes hours day-of-month month day-of-week year, e.g. 0 12 * * ? *");
    }
    const err = h("p", { class: "error", id: "schedule-error", "aria-live": "polite" });
    setTimeout(preview, 0);
    return [kind, inputs, h("p", {}, "Expression: ", h("code", { id: "schedule-expression" }, scheduleExpression(W))),
      err, h("div", { id: "schedule-preview", "aria-live": "polite" })];
  }

  let previewTimer = null;
  function previewSoon() {
    const x = $("#schedule-expression");
    if (x) x.textContent = scheduleExpression(W);
    clearTimeout(previewTimer);
    previewTimer = setTimeout(preview, 300);
  }

  // Pipebridge.PreviewSchedule: the next 10 fire times, shown in UTC and local time.
  async function preview() {
    const box = $("#schedule-preview"), err = $("#schedule-error");
    if (!box) return true;
    const expr = scheduleExpression(W);
    try {
      const r = await call("Pipebridge.PreviewSchedule", { ScheduleExpression: expr, Count: 10 });
      if (!box.isConnected || scheduleExpression(W) !== expr) return true; // moved or typed on since
      err.textContent = "";
      const tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
      const rows = (r.FireTimes || []).map((t, i) => {
        const d = new Date(t);
        return h("tr", {}, h("td", {}, String(i + 1)), h("td", {}, fmtTime(t)), h("td", {}, fmtLocal(d)));
      });
      box.replaceChildren(table(["#", "UTC", `Local time (${tz})`], rows, "The next 10 trigger dates"));
      box.firstChild.querySelector("table").id = "next-fires";
      return true;
    } catch (e) {
      if (e.type === "UnknownOperationException") {
        box.replaceChildren(h("p", { class: "hint", id: "preview-unavailable" },
          "This server cannot preview schedules yet (Pipebridge.PreviewSchedule is missing)."));
        return true;
      }
      err.textContent = e.message;
      box.replaceChildren();
      return false;
    }
  }

  /* ---- step 3 */
  function stepBus() {
    const sel = bind(h("select", {}, buses.map((b) => h("option", { value: b.Name, selected: b.Name === W.bus },
      b.Name))), "bus", () => checkBus());
    setTimeout(checkBus, 0);
    return [field("event-bus", "Event bus", sel, "The rule reacts to events on this bus.")];
  }
  function checkBus() {
    return setErr("event-bus", W.type === "schedule" && W.bus !== "default" ?
      "ScheduleExpression is supported only on the default event bus." : "");
  }

  /* ---- step 4 */
  function stepTargets() {
    const list = h("div", { id: "targets" });
    const addErr = h("p", { class: "error", id: "add-target-error", role: "alert" });
    const add = h("button", { type: "button", id: "add-target", onclick: () => {
      if (W.targets.length >= MAX_TARGETS) {
        addErr.textContent = "The requested resource exceeds the maximum number allowed. " +
          `A rule can have at most ${MAX_TARGETS} targets.`;
        add.focus();
        return;
      }
      addErr.textContent = "";
      W.targets.push(newTarget(W.targets.length));
      drawTargets();
      list.lastChild.querySelector("select").focus();
    } }, "Add another target");
    const drawTargets = () => list.replaceChildren(...W.targets.map((t, i) => targetCard(t, i, drawTargets)));
    drawTargets();
    return [h("p", {}, `Up to ${MAX_TARGETS} targets. Each matched event starts each target.`), list,
      h("div", { id: "add-target-field" }, add, addErr)];
  }

  function targetCard(t, i, redraw) {
    const p = `t${i}`;
    const kind = h("select", {}, h("option", { value: "pipeline", selected: t.kind === "pipeline" },
      "SageMaker Pipeline"), h("option", { value: "arn", selected: t.kind === "arn" }, "Other (by ARN)"));
    kind.addEventListener("change", () => { t.kind = kind.value; redraw(); });
    let what;
    if (t.kind === "pipeline") {
      const sel = h("select", {}, h("option", { value: "" }, pipelinesCache.length ? "Choose a pipeline" :
        "No pipelines: create one first"), pipelinesCache.map((x) =>
        h("option", { value: x.PipelineArn, selected: x.PipelineArn === t.pipeline }, x.PipelineName)));
      sel.addEventListener("change", () => { t.pipeline = sel.value; setErr(`${p}-pipeline`, ""); });
      what = field(`${p}-pipeline`, "Pipeline", sel);
    } else {
      const arn = h("input", { value: t.arn, spellcheck: "false" });
      arn.addEventListener("input", () => { t.arn = arn.value; });
      what = field(`${p}-arn`, "Target ARN", arn, "Stored as AWS stores it; delivery reports kinds it cannot invoke.");
    }
    const params = h("div", { id: `${p}-params` });
    const drawParams = () => params.replaceChildren(t.params.length ? paramsTable(t, p) :
      h("p", { class: "hint" }, "No parameters: the pipeline's defaults apply."));
    drawParams();
    const retry = h("input", { value: t.retry, inputmode: "numeric", size: 6 });
    retry.addEventListener("input", () => { t.retry = retry.value; });
    const age = h("input", { value: t.age, inputmode: "numeric", size: 8 });
    age.addEventListener("input", () => { t.age = age.value; });
    const dlq = h("input", { value: t.dlq, spellcheck: "false", placeholder: "arn:aws:sqs:us-east-1:000000000000:my-dlq" });
    dlq.addEventListener("input", () => { t.dlq = dlq.value; });
    return h("fieldset", { class: "target", id: `${p}-card` },
      h("legend", {}, `Target ${i + 1}`),
      h("p", { class: "error", id: `${p}-error`, role: "alert" }),
      field(`${p}-kind`, "Target type", kind), what,
      t.kind === "pipeline" ? h("div", {}, h("h3", {}, "Pipeline parameters"), params,
        h("button", { type: "button", id: `${p}-add-param`, onclick: () => {
          t.params.push({ name: "", kind: "static", value: "" });
          drawParams();
          params.querySelector("tr:last-child input").focus();
        } }, "Add parameter")) : null,
      h("details", { id: `${p}-more` }, h("summary", {}, "Additional settings: retry policy and dead-letter queue"),
        h("div", { class: "row" },
          field(`${p}-retry`, "Maximum retry attempts", retry, "0 to 185 (AWS's default 185)."),
          field(`${p}-age`, "Maximum age of event (seconds)", age, "60 to 86400 (24 hours).")),
        field(`${p}-dlq`, "Dead-letter queue ARN (optional)", dlq,
          "Failed invocations are kept as dead letters under this ARN (see Dead letters).")),
      W.targets.length > 1 ? h("button", { type: "button", class: "link", onclick: () => {
        W.targets.splice(i, 1); redraw();
        const e = $("#add-target-error");
        if (e) e.textContent = "";
      } }, `Remove target ${i + 1}`) : null);
  }

  function paramsTable(t, p) {
    const doc = sampleDoc(W);
    const rows = t.params.map((row, k) => {
      const id = `${p}-param${k}`;
      const name = h("input", { id: `${id}-name`, value: row.name, spellcheck: "false" });
      const kind = h("select", { id: `${id}-kind` }, h("option", { value: "static", selected: row.kind === "static" },
        "Static"), h("option", { value: "dynamic", selected: row.kind === "dynamic" }, "Dynamic (JSON path)"));
      const value = h("input", { id: `${id}-value`, value: row.value, spellcheck: "false",
        placeholder: row.kind === "dynamic" ? "$.detail.pipelineExecutionDisplayName" : "" });
      const prev = h("output", { id: `${id}-preview`, for: `${id}-value` });
      const err = h("p", { class: "error", id: `${id}-error` });
      for (const el of [name, kind, value]) el.setAttribute("aria-describedby", `${id}-error ${id}-preview`);
      const update = () => {
        row.name = name.value; row.kind = kind.value; row.value = value.value;
        const pv = previewParam(row, doc);
        prev.textContent = pv.text;
        prev.className = pv.ok ? "preview" : "preview bad";
      };
      for (const el of [name, kind, value]) el.addEventListener("input", update);
      kind.addEventListener("change", update);
      update();
      return h("tr", {},
        h("td", {}, h("label", { for: `${id}-name`, class: "sr" }, `Parameter ${k + 1} name`), name),
        h("td", {}, h("label", { for: `${id}-kind`, class: "sr" }, `Parameter ${k + 1} kind`), kind),
        h("td", {}, h("label", { for: `${id}-value`, class: "sr" }, `Parameter ${k + 1} value`), value, err),
        h("td", {}, prev),
        h("td", {}, h("button", { type: "button", class: "link", onclick: () => {
          t.params.splice(k, 1);
          const host = document.getElementById(`${p}-params`);
          host.replaceChildren(t.params.length ? paramsTable(t, p) : h("p", { class: "hint" }, "No parameters."));
        } }, h("span", { class: "sr" }, `Remove parameter ${k + 1}`), h("span", { "aria-hidden": "true" }, "Remove"))));
    });
    return h("div", { class: "table-wrap" }, h("table", { class: "params" },
      h("caption", {}, W.type === "schedule" ? "Previews use a Scheduled Event." : "Previews use the sample event of step 2."),
      h("thead", {}, h("tr", {}, ["Name", "Kind", "Value", "Resolves to", ""].map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows)));
  }

  function previewParam(row, doc) {
    if (row.kind === "static") {
      if (isPath(row.value)) return { ok: false, text: "Looks like a JSON path: it would be read from the event. Choose Dynamic." };
      return { ok: true, text: row.value };
    }
    if (!row.value) return { ok: false, text: "Give a JSON path, e.g. $.detail.key" };
    const r = evalPath(row.value, doc || {});
    if (!r.ok) return { ok: false, text: r.error };
    if (!doc) return { ok: false, text: "The sample event is not valid JSON." };
    if (!r.found) return { ok: false, text: "Finds nothing in the sample event: the invocation would fail (INVALID_PARAMETER)." };
    return { ok: true, text: paramText(r.value) };
  }

  function checkTargets() {
    let ok = true;
    W.targets.forEach((t, i) => {
      const p = `t${i}`;
      if (t.kind === "pipeline") ok = setErr(`${p}-pipeline`, t.pipeline ? "" : "Choose the pipeline to start.") && ok;
      else ok = setErr(`${p}-arn`, t.arn.trim() ? "" : coral(null, `targets.${i + 1}.member.arn`, "Member must not be null")) && ok;
      const r = Number(t.retry), a = Number(t.age);
      let m = "";
      if (!/^\d+$/.test(t.retry) || r > 185) m = coral(t.retry, `targets.${i + 1}.member.retryPolicy.maximumRetryAttempts`,
        r > 185 ? "Member must have value less than or equal to 185" : "Member must have value greater than or equal to 0");
      ok = setErr(`${p}-retry`, m) && ok;
      m = "";
      if (!/^\d+$/.test(t.age) || a < 60 || a > 86400) m = coral(t.age, `targets.${i + 1}.member.retryPolicy.maximumEventAgeInSeconds`,
        a > 86400 ? "Member must have value less than or equal to 86400" : "Member must have value greater than or equal to 60");
      ok = setErr(`${p}-age`, m) && ok;
      if (document.getElementById(`${p}-retry-error`).textContent || m) $(`#${p}-more`).open = true;
      const names = new Set();
      t.params.forEach((row, k) => {
        const id = `${p}-param${k}`;
        const at = `targets.${i + 1}.member.sageMakerPipelineParameters.pipelineParameterList.${k + 1}.member`;
        let msg = "";
        if (!row.name) msg = coral(null, `${at}.name`, "Member must not be null");
        else if (row.name.length > 256) msg = coral(row.name, `${at}.name`, "Member must have length less than or equal to 256");
        else if (!PARAM_RE.test(row.name)) msg = coral(row.name, `${at}.name`,
          "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9])*$");
        else if (names.has(row.name)) msg = `Parameter ${row.name} is given twice.`;
        else if (row.value.length > 1024) msg = coral(row.value, `${at}.value`, "Member must have length less than or equal to 1024");
        else if (row.kind === "dynamic" && !evalPath(row.value, {}).ok) msg = evalPath(row.value, {}).error;
        else if (row.kind === "static" && isPath(row.value)) msg = "This value is a JSON path: choose Dynamic, or change it.";
        names.add(row.name);
        const slot = document.getElementById(`${id}-error`);
        if (slot) slot.textContent = msg;
        for (const s of ["name", "value"]) {
          const el = document.getElementById(`${id}-${s}`);
          if (el) el.setAttribute("aria-invalid", msg ? "true" : "false");
        }
        if (msg) ok = false;
      });
    });
    return ok;
  }

  /* ---- step 5 */
  function stepRole() {
    const gen = generatedRole(W);
    const arn = bind(h("input", { value: W.roleArn, spellcheck: "false", disabled: W.roleMode !== "existing",
      placeholder: "arn:aws:iam::000000000000:role/my-role" }), "roleArn", () => checkRole());
    return [h("fieldset", {}, h("legend", {}, "Execution role"),
      h("div", { class: "radio" }, bind(h("input", { type: "radio", name: "role-mode", id: "role-new", value: "new",
        checked: W.roleMode === "new" }), "roleMode", render), h("label", { for: "role-new" },
        "Create a new role for this rule")),
      h("p", { class: "hint" }, "Role: ", h("code", { id: "role-generated" }, gen)),
      h("div", { class: "radio" }, bind(h("input", { type: "radio", name: "role-mode", id: "role-existing", value: "existing",
        checked: W.roleMode === "existing" }), "roleMode", render), h("label", { for: "role-existing" },
        "Use an existing role"))),
    field("role-arn", "Existing role ARN", arn),
    h("p", { class: "note" }, "pipebridge does not enforce IAM yet: the role is stored with each target " +
      "(SageMaker pipeline targets require one, as on AWS) and nothing is created. " +
      "A generated name keeps the configuration ready for when IAM lands.")];
  }
  function checkRole() {
    if (W.roleMode !== "existing") return setErr("role-arn", "");
    return setErr("role-arn", ROLE_RE.test(W.roleArn.trim()) ? "" : coral(W.roleArn, "roleArn",
      "Member must satisfy regular expression pattern: ^arn:aws[a-z\\-]*:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+$"));
  }
  const roleOf = () => (W.roleMode === "existing" ? W.roleArn.trim() : generatedRole(W));

  /* ---- step 6 */
  function stepTags() {
    const list = h("div", { id: "tags" });
    const draw = () => list.replaceChildren(W.tags.length ? h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Key"), h("th", { scope: "col" }, "Value"), h("th", {}))),
      h("tbody", {}, W.tags.map((tg, k) => {
        const key = h("input", { id: `tag${k}-key`, value: tg.key, "aria-describedby": `tag${k}-error` });
        const val = h("input", { id: `tag${k}-value`, value: tg.value });
        key.addEventListener("input", () => { tg.key = key.value; });
        val.addEventListener("input", () => { tg.value = val.value; });
        return h("tr", {}, h("td", {}, h("label", { for: `tag${k}-key`, class: "sr" }, `Tag ${k + 1} key`), key,
          h("p", { class: "error", id: `tag${k}-error` })),
        h("td", {}, h("label", { for: `tag${k}-value`, class: "sr" }, `Tag ${k + 1} value`), val),
        h("td", {}, h("button", { type: "button", class: "link", onclick: () => { W.tags.splice(k, 1); draw(); } },
          `Remove tag ${k + 1}`)));
      })))) : h("p", { class: "hint" }, "No tags."));
    draw();
    return [h("p", {}, "Tags are key/value pairs kept with the rule (at most 50)."), list,
      h("p", { class: "error", id: "tags-error", role: "alert" }),
      h("button", { type: "button", id: "add-tag", onclick: () => {
        if (W.tags.length >= 50) { $("#tags-error").textContent = "A resource can have at most 50 tags."; return; }
        W.tags.push({ key: "", value: "" }); draw(); list.querySelector("tr:last-child input").focus();
      } }, "Add tag")];
  }
  function checkTags() {
    let ok = true;
    const seen = new Set();
    W.tags.forEach((tg, k) => {
      let msg = "";
      if (!tg.key) msg = coral(null, `tags.${k + 1}.member.key`, "Member must not be null");
      else if ([...tg.key].length > 128) msg = coral(tg.key, `tags.${k + 1}.member.key`, "Member must have length less than or equal to 128");
      else if ([...tg.value].length > 256) msg = coral(tg.value, `tags.${k + 1}.member.value`, "Member must have length less than or equal to 256");
      else if (seen.has(tg.key)) msg = `The tag key ${tg.key} is given twice.`;
      seen.add(tg.key);
      const slot = document.getElementById(`tag${k}-error`);
      if (slot) slot.textContent = msg;
      const el = document.getElementById(`tag${k}-key`);
      if (el) el.setAttribute("aria-invalid", msg ? "true" : "false");
      if (msg) ok = false;
    });
    return ok;
  }

  /* ---- step 7 */
  function requests() {
    const rule = { Name: W.name, EventBusName: W.bus, State: "ENABLED" };
    if (W.description) rule.Description = W.description;
    if (W.type === "pattern") rule.EventPattern = W.pattern; else rule.ScheduleExpression = scheduleExpression(W);
    if (W.tags.length) rule.Tags = W.tags.map((t) => ({ Key: t.key, Value: t.value }));
    const targets = W.targets.map((t) => {
      const x = { Id: t.id, Arn: t.kind === "pipeline" ? t.pipeline : t.arn.trim(), RoleArn: roleOf(),
        RetryPolicy: { MaximumRetryAttempts: Number(t.retry), MaximumEventAgeInSeconds: Number(t.age) } };
      if (t.kind === "pipeline" && t.params.length)
        x.SageMakerPipelineParameters = { PipelineParameterList: t.params.map((r) => ({ Name: r.name, Value: r.value })) };
      if (t.dlq.trim()) x.DeadLetterConfig = { Arn: t.dlq.trim() };
      return x;
    });
    return { rule, targets: { Rule: W.name, EventBusName: W.bus, Targets: targets } };
  }
  function stepReview() {
    const r = requests();
    return [h("dl", { class: "summary" },
      h("dt", {}, "Name"), h("dd", { id: "review-name" }, W.name),
      h("dt", {}, "Event bus"), h("dd", {}, W.bus),
      h("dt", {}, W.type === "pattern" ? "Event pattern" : "Schedule"),
      h("dd", {}, h("code", {}, W.type === "pattern" ? W.pattern : scheduleExpression(W))),
      h("dt", {}, "Targets"), h("dd", {}, String(r.targets.Targets.length)),
      h("dt", {}, "Execution role"), h("dd", {}, roleOf()),
      h("dt", {}, "Tags"), h("dd", {}, String(W.tags.length))),
    h("details", {}, h("summary", {}, "The requests that will be sent"),
      h("pre", { class: "code" }, `PutRule ${JSON.stringify(r.rule, null, 2)}\n\nPutTargets ${JSON.stringify(r.targets, null, 2)}`)),
    h("p", { class: "error", id: "create-error", role: "alert" }),
    h("div", { id: "create-result", "aria-live": "polite" })];
  }

  async function validateStep(i) {
    switch (i) {
      case 0: return checkName() & checkDesc();
      case 1:
        if (W.type === "schedule") {
          if (W.bus !== "default") return false;
          return await preview();
        }
        try { JSON.parse(W.pattern); } catch (e) { /* the server's message is AWS's: ask it */ }
        return await testPattern();
      case 2: return checkBus();
      case 3: return checkTargets();
      case 4: return checkRole();
      case 5: return checkTags();
      default: return true;
    }
  }

  // Where an AWS error about a request belongs: a step and a field id.
  function placeError(e, phase) {
    const m = e.message || "";
    const t = /targets\.(\d+)\.member\.?([A-Za-z.0-9]*)/.exec(m);
    if (phase === "rule") {
      if (/at 'name'/.test(m) || /already exists/.test(m)) return [0, "rule-name"];
      if (/at 'description'/.test(m)) return [0, "rule-description"];
      if (/supported only on the default event bus|[Ee]vent bus|at 'eventBusName'/.test(m)) return [2, "event-bus"];
      if (/ScheduleExpression|at 'scheduleExpression'/.test(m)) return [1, "schedule-error"];
      if (/[Ee]vent pattern|at 'eventPattern'/.test(m)) return [1, "event-pattern"];
      if (/at 'tags|tags?\b/i.test(m)) return [5, "tags-error"];
      return [6, "create-error"];
    }
    if (/RoleArn|roleArn/.test(m)) return [4, W.roleMode === "existing" ? "role-arn" : "create-error"];
    if (t) {
      const k = Number(t[1]) - 1;
      const sub = t[2];
      const pm = /pipelineParameterList\.(\d+)/.exec(sub);
      if (pm) return [3, `t${k}-param${Number(pm[1]) - 1}`];
      if (/retryPolicy\.maximumRetry/.test(sub)) return [3, `t${k}-retry`];
      if (/retryPolicy/.test(sub)) return [3, `t${k}-age`];
      if (/deadLetterConfig/.test(sub)) return [3, `t${k}-dlq`];
      if (/^arn/.test(sub)) return [3, W.targets[k] && W.targets[k].kind === "arn" ? `t${k}-arn` : `t${k}-pipeline`];
      return [3, `t${k}`];
    }
    if (e.targetId) {
      const k = W.targets.findIndex((x) => x.id === e.targetId);
      if (k >= 0) return [3, `t${k}`];
    }
    if (/maximum number allowed/.test(m)) return [3, "add-target"];
    return [6, "create-error"];
  }

  function showAt([step, id], msg) {
    W.step = step;
    W.reached = Math.max(W.reached, step);
    render();
    if (step === 3 || step === 1) {
      for (const d of panel.querySelectorAll("details")) if (d.querySelector(`#${id}`)) d.open = true;
    }
    const slot = document.getElementById(`${id}-error`) || document.getElementById(id);
    if (slot) slot.textContent = msg;
    const ctl = document.getElementById(id);
    if (ctl && /^(INPUT|SELECT|TEXTAREA)$/.test(ctl.tagName)) { ctl.setAttribute("aria-invalid", "true"); ctl.focus(); }
    else if (slot) { slot.setAttribute("tabindex", "-1"); slot.focus(); }
  }

  async function create() {
    const btn = $("#wizard-create");
    btn.disabled = true;
    try {
      for (let i = 0; i < STEPS.length - 1; i++) {
        W.step = i; render();
        if (!(await validateStep(i))) { announce(`Fix step ${i + 1} first.`); return; }
      }
      W.step = STEPS.length - 1; render();
      const r = requests();
      if (!W.ruleCreated) {
        // PutRule on an existing rule replaces it: the wizard only creates.
        try {
          await call("AWSEvents.DescribeRule", { Name: W.name, EventBusName: W.bus });
          return showAt([0, "rule-name"], `Rule ${W.name} already exists on event bus ${W.bus}. Choose another name.`);
        } catch (e) {
          if (e.type !== "ResourceNotFoundException") throw e;
        }
        try {
          await call("AWSEvents.PutRule", r.rule);
        } catch (e) {
          return showAt(placeError(e, "rule"), e.message);
        }
        W.ruleCreated = { name: W.name, bus: W.bus };
      }
      let failed = null;
      try {
        const out = await call("AWSEvents.PutTargets", r.targets);
        if (out.FailedEntryCount > 0) {
          const f = out.FailedEntries[0];
          failed = Object.assign(new ApiError(f.ErrorCode, `${f.ErrorCode}: ${f.ErrorMessage}`, 200), { targetId: f.TargetId });
        }
      } catch (e) { failed = e; }
      if (failed) {
        showAt(placeError(failed, "targets"), failed.message);
        announce(`The rule ${W.ruleCreated.name} was created, but its targets were not.`);
        return;
      }
      const done = { name: W.name, bus: W.bus };
      W = null;
      leaveGuard = null;
      announce(`Rule ${done.name} created.`);
      location.hash = `#/rule/${encodeURIComponent(done.bus)}/${encodeURIComponent(done.name)}`;
    } catch (e) {
      showAt([STEPS.length - 1, "create-error"], `${e.type}: ${e.message}`);
    } finally {
      const b = $("#wizard-create");
      if (b) b.disabled = false;
    }
  }

  render();
}

/* ============================================================== views == */

async function busPicker(current, onchange) {
  const buses = await callAll("AWSEvents.ListEventBuses", {}, "EventBuses");
  const sel = h("select", { id: "bus-picker" }, buses.map((b) => h("option", { value: b.Name, selected: b.Name === current },
    b.Name)));
  sel.addEventListener("change", () => onchange(sel.value));
  return h("div", { class: "field inline" }, h("label", { for: "bus-picker" }, "Event bus"), sel);
}

async function viewRules(bus = "default") {
  const rules = await callAll("AWSEvents.ListRules", { EventBusName: bus }, "Rules");
  const details = await Promise.all(rules.map(async (r) => {
    const [t, d] = await Promise.all([
      call("AWSEvents.ListTargetsByRule", { Rule: r.Name, EventBusName: bus }).catch(() => ({ Targets: [] })),
      r.ScheduleExpression ? call("AWSEvents.DescribeRule", { Name: r.Name, EventBusName: bus }).catch(() => ({})) :
        Promise.resolve({}),
    ]);
    return { targets: t.Targets || [], next: d.NextFireTime };
  }));
  const rows = rules.map((r, i) => h("tr", {},
    h("th", { scope: "row" }, h("a", { href: `#/rule/${encodeURIComponent(bus)}/${encodeURIComponent(r.Name)}` }, r.Name)),
    h("td", {}, h("span", { class: `state ${r.State === "DISABLED" ? "off" : "on"}` }, r.State)),
    h("td", {}, h("code", { class: "clip" }, r.ScheduleExpression || r.EventPattern || "")),
    h("td", {}, details[i].targets.length ? details[i].targets.map((t) => h("div", { class: "clip" }, t.Arn.split(":").pop())) :
      h("span", { class: "muted" }, "none")),
    h("td", {}, r.ScheduleExpression ? (details[i].next ? fmtTime(details[i].next) :
      r.State === "DISABLED" ? "disabled" : "—") : "")));
  main().replaceChildren(
    h("div", { class: "title" }, h("h1", {}, "Rules"),
      h("a", { class: "button primary", href: `#/create?bus=${encodeURIComponent(bus)}`, onclick: () => { if (W && !W.ruleCreated) W = null; } },
        "Create rule")),
    await busPicker(bus, (b) => { location.hash = `#/rules/${encodeURIComponent(b)}`; }),
    table(["Name", "State", "Pattern or schedule", "Targets", "Next fire (UTC)"], rows, `Rules on event bus ${bus}`));
}

function parseMetrics(text, s, bus, rule) {
  const out = {};
  for (const line of text.split("\n")) {
    const m = /^pipebridge_([a-z_]+)\{([^}]*)\} ([0-9.e+]+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...m[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2].replace(/\\(.)/g, "$1")]));
    if (labels.account !== s.account || labels.region !== s.region || labels.bus !== bus) continue;
    if (labels.rule !== rule || labels.le) continue;
    out[m[1]] = Number(m[3]);
  }
  return out;
}

async function viewRule(bus, name) {
  const s = session();
  const [r, t] = await Promise.all([call("AWSEvents.DescribeRule", { Name: name, EventBusName: bus }),
    call("AWSEvents.ListTargetsByRule", { Rule: name, EventBusName: bus })]);
  const targets = t.Targets || [];
  const msg = h("div", { id: "rule-message", "aria-live": "polite" });
  const toggle = h("button", { type: "button", id: "rule-toggle", onclick: async () => {
    try {
      await call(r.State === "DISABLED" ? "AWSEvents.EnableRule" : "AWSEvents.DisableRule", { Name: name, EventBusName: bus });
      announce(`Rule ${name} ${r.State === "DISABLED" ? "enabled" : "disabled"}.`);
      await viewRule(bus, name);
    } catch (e) { msg.replaceChildren(errorBox(e)); }
  } }, r.State === "DISABLED" ? "Enable" : "Disable");
  const del = h("button", { type: "button", id: "rule-delete", class: "danger", onclick: async () => {
    if (!confirm(`Delete rule ${name} and its ${targets.length} target(s)?`)) return;
    try {
      if (targets.length) {
        const out = await call("AWSEvents.RemoveTargets", { Rule: name, EventBusName: bus, Ids: targets.map((x) => x.Id) });
        if (out.FailedEntryCount) throw new ApiError("RemoveTargets", out.FailedEntries[0].ErrorMessage, 200);
      }
      await call("AWSEvents.DeleteRule", { Name: name, EventBusName: bus });
      announce(`Rule ${name} deleted.`);
      location.hash = `#/rules/${encodeURIComponent(bus)}`;
    } catch (e) { msg.replaceChildren(errorBox(e)); }
  } }, "Delete");
  let metrics = {};
  try {
    const resp = await fetch("/metrics", { cache: "no-store" });
    metrics = parseMetrics(await resp.text(), s, bus, name);
  } catch { /* the page works without them */ }
  const mrows = [["triggered_rules_total", "Triggered (matched events)"], ["invocations_total", "Invocations"],
    ["failed_invocations_total", "Failed invocations"], ["invocation_attempts_total", "Attempts"],
    ["retry_invocation_attempts_total", "Retries"], ["dead_letter_invocations_total", "Dead letters"],
    ["ingestion_to_invocation_ms_count", "Latency samples"], ["ingestion_to_invocation_ms_sum", "Latency total (ms)"]]
    .map(([k, label]) => h("tr", {}, h("th", { scope: "row" }, label), h("td", { id: `metric-${k}` }, String(metrics[k] ?? 0))));
  let dls = [];
  try {
    dls = (await callAll("Pipebridge.ListDeadLetters", { Limit: 100 }, "DeadLetters", 1000)).filter((d) => d.RuleArn === r.Arn);
  } catch { /* optional */ }
  main().replaceChildren(
    h("p", {}, h("a", { href: `#/rules/${encodeURIComponent(bus)}` }, `← Rules on ${bus}`)),
    h("div", { class: "title" }, h("h1", {}, `Rule ${name}`), h("div", { class: "actions" }, toggle, del)), msg,
    h("dl", { class: "summary" },
      h("dt", {}, "ARN"), h("dd", {}, h("code", {}, r.Arn)),
      h("dt", {}, "State"), h("dd", { id: "rule-state" }, r.State),
      h("dt", {}, "Event bus"), h("dd", {}, r.EventBusName || bus),
      r.Description ? [h("dt", {}, "Description"), h("dd", {}, r.Description)] : null,
      r.EventPattern ? [h("dt", {}, "Event pattern"), h("dd", {}, h("pre", { class: "code" }, r.EventPattern))] : null,
      r.ScheduleExpression ? [h("dt", {}, "Schedule"), h("dd", {}, h("code", {}, r.ScheduleExpression)),
        h("dt", {}, "Next fire"), h("dd", { id: "rule-next-fire" }, r.NextFireTime ? `${fmtTime(r.NextFireTime)} (${fmtLocal(new Date(r.NextFireTime * 1000))})` : "—")] : null),
    h("h2", {}, "Targets"),
    table(["Id", "ARN", "Role", "Parameters", "Retry policy", "Dead letters"], targets.map((x) => h("tr", {},
      h("td", {}, x.Id), h("td", {}, h("code", {}, x.Arn)), h("td", {}, h("code", {}, x.RoleArn || "")),
      h("td", {}, ((x.SageMakerPipelineParameters || {}).PipelineParameterList || []).map((p) => h("div", {}, h("code", {}, `${p.Name} = ${p.Value}`)))),
      h("td", {}, x.RetryPolicy ? `${x.RetryPolicy.MaximumRetryAttempts ?? 185} attempts, ${x.RetryPolicy.MaximumEventAgeInSeconds ?? 86400} s` : "default"),
      h("td", {}, x.DeadLetterConfig ? h("code", {}, x.DeadLetterConfig.Arn) : "")))),
    h("h2", {}, "Invocations and metrics"),
    h("p", { class: "hint" }, "Counters since the server started (GET /metrics)."),
    h("div", { class: "table-wrap" }, h("table", { id: "rule-metrics" }, h("tbody", {}, mrows))),
    h("h2", {}, "Dead letters of this rule"),
    table(["Id", "Target", "Error", "When"], dls.map((d) => h("tr", {}, h("td", {}, String(d.Id)), h("td", {}, d.TargetId),
      h("td", {}, `${d.ErrorCode}: ${d.ErrorMessage}`), h("td", {}, fmtTime(d.CreationTime))))));
}

async function viewPipelines() {
  const ps = await callAll("SageMaker.ListPipelines", { SortBy: "Name", SortOrder: "Ascending" }, "PipelineSummaries");
  main().replaceChildren(h("h1", {}, "Pipelines"),
    table(["Name", "ARN", "Created", "Last execution"], ps.map((p) => h("tr", {},
      h("th", { scope: "row" }, h("a", { href: `#/executions/${encodeURIComponent(p.PipelineName)}` }, p.PipelineName)),
      h("td", {}, h("code", {}, p.PipelineArn)), h("td", {}, fmtTime(p.CreationTime)),
      h("td", {}, fmtTime(p.LastExecutionTime))))));
}

async function viewExecutions(pipeline) {
  const ps = await callAll("SageMaker.ListPipelines", { SortBy: "Name", SortOrder: "Ascending" }, "PipelineSummaries");
  if (!pipeline && ps.length) pipeline = ps[0].PipelineName;
  const sel = h("select", { id: "pipeline-picker" }, ps.map((p) => h("option", { value: p.PipelineName,
    selected: p.PipelineName === pipeline }, p.PipelineName)));
  sel.addEventListener("change", () => { location.hash = `#/executions/${encodeURIComponent(sel.value)}`; });
  const host = h("div", { id: "executions", "aria-live": "polite" });
  main().replaceChildren(h("h1", {}, "Executions"),
    h("div", { class: "field inline" }, h("label", { for: "pipeline-picker" }, "Pipeline"), sel), host);
  if (!pipeline) return host.replaceChildren(h("p", {}, "No pipelines yet."));
  const draw = async () => {
    const ex = await callAll("SageMaker.ListPipelineExecutions", { PipelineName: pipeline }, "PipelineExecutionSummaries", 200);
    host.replaceChildren(table(["Execution", "Status", "Started"], ex.map((e) => h("tr", {},
      h("th", { scope: "row" }, h("a", { href: `#/execution/${encodeURIComponent(e.PipelineExecutionArn)}` },
        e.PipelineExecutionDisplayName || e.PipelineExecutionArn.split("/").pop())),
      h("td", {}, h("span", { class: `status ${e.PipelineExecutionStatus}` }, e.PipelineExecutionStatus)),
      h("td", {}, fmtTime(e.StartTime)))), `Executions of ${pipeline} (refreshes every 3 s)`));
  };
  await draw();
  timers.push(setInterval(() => draw().catch(() => {}), 3000));
}

const RUNNING = new Set(["Executing", "Stopping"]);

async function viewExecution(arn) {
  const host = h("div", { id: "execution" });
  const pipeName = arn.split("/")[1];
  main().replaceChildren(h("p", {}, h("a", { href: `#/executions/${encodeURIComponent(pipeName)}` }, `← Executions of ${pipeName}`)),
    h("h1", {}, "Execution"), host);
  const draw = async () => {
    const [d, p, st] = await Promise.all([
      call("SageMaker.DescribePipelineExecution", { PipelineExecutionArn: arn }),
      callAll("SageMaker.ListPipelineParametersForExecution", { PipelineExecutionArn: arn }, "PipelineParameters"),
      callAll("SageMaker.ListPipelineExecutionSteps", { PipelineExecutionArn: arn, SortOrder: "Ascending" }, "PipelineExecutionSteps"),
    ]);
    const running = RUNNING.has(d.PipelineExecutionStatus);
    host.replaceChildren(
      h("dl", { class: "summary" },
        h("dt", {}, "Name"), h("dd", {}, d.PipelineExecutionDisplayName || ""),
        h("dt", {}, "ARN"), h("dd", {}, h("code", {}, arn)),
        h("dt", {}, "Status"), h("dd", {}, h("span", { id: "execution-status", class: `status ${d.PipelineExecutionStatus}` },
          d.PipelineExecutionStatus), running ? " (refreshing every 2 s)" : ""),
        d.FailureReason ? [h("dt", {}, "Failure"), h("dd", {}, d.FailureReason)] : null,
        h("dt", {}, "Started"), h("dd", {}, fmtTime(d.CreationTime)),
        h("dt", {}, "Last change"), h("dd", {}, fmtTime(d.LastModifiedTime))),
      h("h2", {}, "Parameters"),
      h("div", { class: "table-wrap" }, h("table", { id: "execution-params" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Value"))),
        h("tbody", {}, p.map((x) => h("tr", {}, h("th", { scope: "row" }, x.Name), h("td", {}, h("code", {}, x.Value))))))),
      h("h2", {}, "Steps"),
      h("div", { "aria-live": "polite" }, table(["Step", "Status", "Started", "Ended", "Failure", "Logs"], st.map((x) => h("tr", {},
        h("th", { scope: "row" }, x.StepName), h("td", {}, h("span", { class: `status ${x.StepStatus}` }, x.StepStatus)),
        h("td", {}, fmtTime(x.StartTime)), h("td", {}, fmtTime(x.EndTime)), h("td", {}, x.FailureReason || ""),
        h("td", {}, x.LogFiles ? [h("div", {}, h("code", {}, x.LogFiles.Stdout || "")), h("div", {}, h("code", {}, x.LogFiles.Stderr || ""))] : ""))))));
    return running;
  };
  if (await draw()) {
    const t = setInterval(async () => {
      try { if (!(await draw())) clearInterval(t); } catch { /* keep the last view */ }
    }, 2000);
    timers.push(t);
  }
}

const DL_PAGE = 100;

function deadLetterRow(d) {
  return h("tr", {},
    h("td", {}, h("input", { type: "checkbox", id: `dl-${d.Id}`, value: d.Id }),
      h("label", { for: `dl-${d.Id}`, class: "sr" }, `Select dead letter ${d.Id}`)),
    h("td", {}, String(d.Id)), h("td", {}, d.RuleName || ""), h("td", {}, d.TargetId || ""),
    h("td", {}, `${d.ErrorCode || ""}: ${d.ErrorMessage || ""}`), h("td", {}, String(d.RetryAttempts ?? "")),
    h("td", {}, fmtTime(d.CreationTime)));
}

async function viewDeadLetters() {
  const out = await call("Pipebridge.ListDeadLetters", { Limit: DL_PAGE });
  const dls = out.DeadLetters || [];
  let token = out.NextToken;
  const msg = h("div", { id: "dlq-message", role: "status" });
  const rows = dls.map(deadLetterRow);
  const shown = h("p", { id: "dl-count" });
  const count = () => { shown.textContent = `${document.querySelectorAll("#main tbody input[type=checkbox]").length} shown${token ? ", more to come" : ""}.`; };
  // The next page is appended below; the rows already shown (and their checkboxes) stay.
  const more = h("button", { type: "button", id: "dl-more", hidden: !token, onclick: async () => {
    try {
      const next = await call("Pipebridge.ListDeadLetters", { Limit: DL_PAGE, NextToken: token });
      token = next.NextToken;
      document.querySelector("#main tbody").append(...(next.DeadLetters || []).map(deadLetterRow));
      more.hidden = !token;
      count();
    } catch (e) { msg.replaceChildren(errorBox(e)); }
  } }, `Show ${DL_PAGE} more`);
  const redrive = async (input) => {
    try {
      const r = await call("Pipebridge.RedriveDeadLetters", input);
      announce(`${r.Redriven} dead letter(s) redriven.`);
      await viewDeadLetters();
      $("#dlq-message").textContent = `${r.Redriven} dead letter(s) redriven.`;
    } catch (e) { msg.replaceChildren(errorBox(e)); }
  };
  main().replaceChildren(h("h1", {}, "Dead letters"),
    h("p", {}, "Invocations that failed for good on targets with a dead-letter queue. Redrive delivers them again."),
    msg,
    h("div", { class: "actions" },
      h("button", { type: "button", id: "redrive-selected", onclick: () => {
        const ids = [...document.querySelectorAll("#main tbody input:checked")].map((c) => Number(c.value));
        if (!ids.length) return msg.replaceChildren(h("p", { class: "error" }, "Select the dead letters to redrive."));
        redrive({ Ids: ids });
      } }, "Redrive selected"),
      h("button", { type: "button", id: "redrive-all", disabled: !dls.length, onclick: () => {
        if (confirm("Redrive every dead letter?")) redrive({ All: true });
      } }, "Redrive all")),
    table(["", "Id", "Rule", "Target", "Error", "Attempts", "When"], rows), shown, more);
  count();
}

/* ============================================================== start == */

$("#signout").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  W = null;
  leaveGuard = null;
  location.hash = "";
  route();
});
route();
