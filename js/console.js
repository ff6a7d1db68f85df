// Workbench's console widget, front-end half (anywidget ESM). Bundled with xterm.js by esbuild into
// workbench/widgets/static/console.{js,css} (`make bundle`); workbench/widgets/console.py is the other half.
//
// Protocol (custom messages, binary buffers; every message from a view carries its `view` id):
//   view -> kernel  {type:"ready", view, cols, rows}   a view rendered: the kernel replays recent output to it
//                   {type:"in", view} + [bytes]        keystrokes and pastes, as UTF-8 bytes
//                   {type:"resize", view, cols, rows}  the view's terminal size changed (fit to the cell)
//                   {type:"ack", view, n}              n output bytes were parsed by xterm (flow control)
//                   {type:"reconnect", view}           the user asked for a new session
//                   {type:"gone", view}                the view was removed
//   kernel -> view  {type:"out", view?, reset?} + [bytes]   output (to one view when `view` is set)
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import "@xterm/xterm/css/xterm.css";
import "./console.css";

const ACK_INTERVAL_MS = 16;

function newViewId() {
  return (globalThis.crypto && crypto.randomUUID) ? crypto.randomUUID() : String(Math.random()).slice(2);
}

function render({ model, el }) {
  const view = newViewId();
  el.classList.add("wb-console");

  const bar = document.createElement("div");
  bar.className = "wb-console-bar";
  const title = document.createElement("span");
  title.className = "wb-console-title";
  const status = document.createElement("span");
  status.className = "wb-console-status";
  const reconnect = document.createElement("button");
  reconnect.className = "wb-console-reconnect";
  reconnect.textContent = "Reconnect";
  bar.append(title, status, reconnect);

  const box = document.createElement("div");
  box.className = "wb-console-term";
  el.append(bar, box);

  const term = new Terminal({
    rows: model.get("rows"),
    scrollback: model.get("scrollback"),
    convertEol: !model.get("tty"),
    // A blinking cursor restarts its blink on every key, which asks for a frame while the key is
    // handled; Chromium then holds other tasks (the echo's WebSocket message) until that frame is
    // drawn, so the echo waits a frame more (p50 29 ms vs 17 ms in bench/console.py).
    cursorBlink: false,
    fontFamily: '"DejaVu Sans Mono", Menlo, Consolas, monospace',
    fontSize: 13,
    allowProposedApi: false,
    theme: { background: "#1e1e1e", foreground: "#d4d4d4", cursor: "#d4d4d4", selectionBackground: "#264f78" },
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(box);
  // Tests and the benchmark read the terminal through this handle (buffer, scrollback).
  el.wbConsole = { term, view };

  const send = (content, buffers) => model.send({ ...content, view }, undefined, buffers);

  function showState() {
    title.textContent = model.get("title");
    const state = model.get("status");
    status.textContent = state;
    el.dataset.status = state;
    const live = state === "running";
    reconnect.style.display = live ? "none" : "";
    term.options.disableStdin = !live;
  }
  model.on("change:status", showState);
  model.on("change:title", showState);
  showState();
  function onRows() { term.resize(term.cols, model.get("rows")); }
  model.on("change:rows", onRows);
  reconnect.addEventListener("click", () => { send({ type: "reconnect" }); term.focus(); });

  // Flow control: acknowledge what xterm has parsed, batched.
  let ackPending = 0;
  let ackTimer = null;
  function ack(n) {
    ackPending += n;
    if (ackTimer === null) {
      ackTimer = setTimeout(() => {
        ackTimer = null;
        const count = ackPending;
        ackPending = 0;
        if (count > 0) send({ type: "ack", n: count });
      }, ACK_INTERVAL_MS);
    }
  }

  // Output sent to all views before this one's replay is part of the replay: skip it until then.
  let synced = false;
  function onMessage(msg, buffers) {
    if (!msg || (msg.view && msg.view !== view)) return;
    if (msg.type === "out") {
      if (msg.view) synced = true;
      else if (!synced) return;
      if (msg.reset) term.reset();
      const b = buffers && buffers[0];
      if (!b || b.byteLength === 0) return;
      const data = new Uint8Array(b.buffer, b.byteOffset, b.byteLength).slice();
      term.write(data, () => ack(data.length));
    }
  }
  model.on("msg:custom", onMessage);

  const encoder = new TextEncoder();
  const input = term.onData((text) => send({ type: "in" }, [encoder.encode(text)]));
  const binary = term.onBinary((text) => {
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i) & 0xff;
    send({ type: "in" }, [bytes]);
  });
  const resized = term.onResize(({ cols, rows }) => send({ type: "resize", cols, rows }));

  // Fit to the cell's width (and the configured rows) whenever the output area changes size.
  function refit() {
    if (!box.isConnected || box.clientWidth === 0) return;
    const dims = fit.proposeDimensions();
    if (dims && dims.cols > 1 && (dims.cols !== term.cols)) term.resize(dims.cols, term.rows);
  }
  const observer = new ResizeObserver(() => refit());
  observer.observe(box);
  refit();
  send({ type: "ready", cols: term.cols, rows: term.rows });

  return () => {
    observer.disconnect();
    model.off("msg:custom", onMessage);
    model.off("change:status", showState);
    model.off("change:title", showState);
    model.off("change:rows", onRows);
    input.dispose(); binary.dispose(); resized.dispose();
    if (ackTimer !== null) clearTimeout(ackTimer);
    try { send({ type: "gone" }); } catch (e) { /* the comm may be closed already */ }
    term.dispose();
  };
}

export default { render };
