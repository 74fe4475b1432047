// An app whose handler calls an HTTPS service through the forward proxy
// in HTTP_PROXY. Node does not read HTTPS_PROXY itself, so the app opens
// the CONNECT tunnel, then speaks TLS over it with Node's default
// verification: it trusts what NODE_EXTRA_CA_CERTS adds, as recplay sets it.
//
//   node node_app.js serve PORT   GET /h1/N calls UPSTREAM/echo/item?n=N
//                                 with a GET over HTTP/1.1, /h2/N with a
//                                 POST of {"n":"N"} over HTTP/2; both answer
//                                 what the service echoed and the ALPN
//   node node_app.js get URL      one GET of an https URL; prints
//                                 "status N" or "error CODE MESSAGE"

"use strict";

const http = require("http");
const http2 = require("http2");
const https = require("https");
const tls = require("tls");

function proxyAddress() {
  const proxy = process.env.HTTP_PROXY || process.env.http_proxy;
  if (!proxy) {
    throw new Error("HTTP_PROXY is not set");
  }
  return new URL(proxy);
}

// A socket to `host:port` through the proxy, once it answered 200.
function tunnel(host, port) {
  const proxy = proxyAddress();
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: proxy.hostname,
      port: proxy.port,
      method: "CONNECT",
      path: `${host}:${port}`,
      headers: { host: `${host}:${port}` },
    });
    req.on("connect", (res, socket) => {
      if (res.statusCode === 200) {
        resolve(socket);
      } else {
        socket.destroy();
        reject(new Error(`CONNECT ${host}:${port} answered ${res.statusCode}`));
      }
    });
    req.on("error", reject);
    req.end();
  });
}

// TLS over the tunnel, verified as Node verifies any https call.
async function secure(url, alpn) {
  const socket = await tunnel(url.hostname, url.port || 443);
  return tls.connect({ socket, servername: url.hostname, ALPNProtocols: [alpn] });
}

function readJson(stream, resolve, reject) {
  const chunks = [];
  stream.on("data", (c) => chunks.push(c));
  stream.on("end", () => {
    const text = Buffer.concat(chunks).toString("utf8");
    try {
      resolve(JSON.parse(text));
    } catch (e) {
      reject(new Error(`not JSON: ${text}`));
    }
  });
  stream.on("error", reject);
}

// GET over HTTP/1.1: answers [status, body, the negotiated ALPN].
async function getH1(target) {
  const url = new URL(target);
  const socket = await secure(url, "http/1.1");
  return new Promise((resolve, reject) => {
    socket.on("error", reject);
    const req = https.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        // No agent: the request goes over this socket (an agent would
        // open its own connection, around the proxy).
        createConnection: () => socket,
      },
      (res) => {
        const status = res.statusCode;
        readJson(res, (body) => resolve([status, body, socket.alpnProtocol]), reject);
      },
    );
    req.on("error", reject);
    req.end();
  });
}

// POST of `data` (JSON) over HTTP/2 (Node's http2 module): answers
// [status, body, ALPN].
async function postH2(target, data) {
  const url = new URL(target);
  const socket = await secure(url, "h2");
  return new Promise((resolve, reject) => {
    const session = http2.connect(url.origin, { createConnection: () => socket });
    session.on("error", reject);
    const req = session.request({
      ":method": "POST",
      ":path": url.pathname + url.search,
      "content-type": "application/json",
    });
    req.on("response", (headers) => {
      const status = headers[":status"];
      readJson(
        req,
        (body) => {
          session.close();
          resolve([status, body, socket.alpnProtocol]);
        },
        reject,
      );
    });
    req.on("error", reject);
    req.end(data);
  });
}

function serve(port) {
  const upstream = process.env.UPSTREAM;
  const server = http.createServer(async (req, res) => {
    const match = /^\/(h1|h2)\/(\d+)$/.exec(req.url);
    let status = 404;
    let body = { error: `no route ${req.url}` };
    if (match) {
      const [, version, n] = match;
      const target = `${upstream}/echo/item?n=${n}`;
      try {
        const [got, echoed, alpn] =
          version === "h2" ? await postH2(target, JSON.stringify({ n })) : await getH1(target);
        status = got === 200 ? 200 : 502;
        body = {
          n,
          method: echoed.method,
          path: echoed.path,
          query: echoed.query,
          body: echoed.body,
          alpn,
          status: got,
        };
      } catch (e) {
        // The test reads what went wrong.
        status = 502;
        body = { error: `${e.code || e.name}: ${e.message}` };
      }
    }
    const data = JSON.stringify(body);
    res.writeHead(status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(data),
    });
    res.end(data);
  });
  server.listen(Number(port), "127.0.0.1");
}

async function getOnce(target) {
  try {
    const [status] = await getH1(target);
    console.log(`status ${status}`);
  } catch (e) {
    console.log(`error ${e.code || e.name} ${e.message}`);
  }
}

const [mode, arg] = process.argv.slice(2);
if (mode === "serve") {
  serve(arg);
} else if (mode === "get") {
  getOnce(arg);
} else {
  console.error("usage: node node_app.js serve PORT | get URL");
  process.exit(2);
}
