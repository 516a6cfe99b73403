// The Node Toxiproxy client (toxiproxy-node-client, unchanged) against mlchaos's
// Toxiproxy-compatible API: make a proxy in front of a TCP echo server, add, change and remove
// toxics, and time real round trips through the proxy. Prints one JSON object of findings;
// tests/proxy/test_toxiproxy.py judges them.
//
//   node client.mjs http://127.0.0.1:API_PORT 127.0.0.1:ECHO_PORT
import net from "node:net";
import { Toxiproxy } from "toxiproxy-node-client";

const [api, upstream] = process.argv.slice(2);
const toxiproxy = new Toxiproxy(api);

function roundTrip(listen, payload = "ping") {
  const [host, port] = [listen.slice(0, listen.lastIndexOf(":")), Number(listen.split(":").pop())];
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const socket = net.connect({ host, port });
    let got = "";
    const done = (outcome) => {
      socket.destroy();
      resolve({ outcome, ms: Number(process.hrtime.bigint() - started) / 1e6, got });
    };
    socket.setTimeout(1500, () => done("timeout"));
    socket.on("connect", () => socket.write(payload));
    socket.on("data", (chunk) => {
      got += chunk.toString();
      if (got.length >= payload.length) done("ok");
    });
    socket.on("error", (err) => done(err.code || "error"));
    socket.on("end", () => done("closed"));
  });
}

const findings = {};
findings.version = await toxiproxy.getVersion();
const proxy = await toxiproxy.createProxy({ name: "node-echo", listen: "127.0.0.1:0", upstream });
findings.listen = proxy.listen;
findings.enabled = proxy.enabled;
findings.base = await roundTrip(proxy.listen);

const latency = await proxy.addToxic({
  name: "slow",
  type: "latency",
  stream: "downstream",
  toxicity: 1,
  attributes: { latency: 300, jitter: 0 },
});
findings.toxic = latency.toJson();
findings.slow = await roundTrip(proxy.listen);
const changed = await latency.update({ attributes: { latency: 600 } });
findings.changed = changed.toJson();
findings.slower = await roundTrip(proxy.listen);
findings.listed = (await toxiproxy.get("node-echo")).name;
await changed.remove();
findings.removed = await roundTrip(proxy.listen);

await proxy.addToxic({ name: "cut", type: "timeout", stream: "upstream", toxicity: 1, attributes: { timeout: 0 } });
findings.timeout = await roundTrip(proxy.listen);
await toxiproxy.reset();
findings.reset = await roundTrip(proxy.listen);

const down = await proxy.update({ enabled: false });
findings.downEnabled = down.enabled;
findings.down = await roundTrip(proxy.listen);
await proxy.update({ enabled: true });
findings.up = await roundTrip(proxy.listen);

try {
  await proxy.addToxic({ name: "bad", type: "nonsense", stream: "downstream", toxicity: 1, attributes: {} });
  findings.badType = "accepted";
} catch (err) {
  findings.badType = err.message;
}
const populated = await toxiproxy.populate([{ name: "node-two", listen: "127.0.0.1:0", upstream }]);
findings.populated = Object.keys(populated);
findings.all = Object.keys(await toxiproxy.getAll()).sort();
await proxy.remove();
await populated["node-two"].remove();
findings.afterRemove = Object.keys(await toxiproxy.getAll());
console.log(JSON.stringify(findings));
