// A minimal Verto client for the suite, written from the Verto document (seeds/003) and how
// verto.js behaves: JSON-RPC 2.0 over one WebSocket, integer ids, every server request answered
// with a result at once, a credential-less login first when reconnecting, RTCPeerConnection
// offers/answers carried in verto.invite / verto.answer / verto.media / verto.attach.
"use strict";

class VertoClient {
  constructor(url, opts = {}) {
    this.url = url;
    this.sessid = opts.sessid || (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2));
    this.nextId = 0;
    this.pending = new Map();
    this.inbox = [];     // server requests, in order
    this.waiters = [];
    this.calls = new Map(); // callID -> {pc, direction, state, remoteSdp, stream}
    this.closed = false;
    this.log = [];
  }

  connect() {
    return new Promise((ok, ko) => {
      this.ws = new WebSocket(this.url);
      this.ws.onopen = () => ok(this);
      this.ws.onerror = (e) => ko(new Error("websocket error"));
      this.ws.onclose = (e) => { this.closed = true; this.closeCode = e.code; this._wake(); };
      this.ws.onmessage = (e) => this._onMessage(e.data);
    });
  }

  close() { if (this.ws) this.ws.close(); }

  _onMessage(text) {
    let msg;
    try { msg = JSON.parse(text); } catch (e) { this.log.push("bad json " + text); return; }
    for (const m of Array.isArray(msg) ? msg : [msg]) {
      if (m.method) {
        if (m.id !== undefined) this.ws.send(JSON.stringify({ jsonrpc: "2.0", id: m.id, result: { method: m.method } }));
        this._onRequest(m.method, m.params || {});
        this.inbox.push(m);
      } else if (m.id !== undefined && this.pending.has(m.id)) {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        clearTimeout(p.timer);
        p.ok(m);
      }
    }
    this._wake();
  }

  _wake() {
    const still = [];
    for (const w of this.waiters) if (!w()) still.push(w);
    this.waiters = still;
  }

  // The whole reply (result or error) to one request; rejects after 10 s, as browsers do.
  rpc(method, params = {}) {
    const id = ++this.nextId;
    params = Object.assign({ sessid: this.sessid }, params);
    this.ws.send(JSON.stringify({ jsonrpc: "2.0", method, params, id }));
    return new Promise((ok, ko) => {
      const timer = setTimeout(() => { this.pending.delete(id); ko(new Error("no reply to " + method + " in 10 s")); }, 10000);
      this.pending.set(id, { ok, timer });
    });
  }

  async result(method, params) {
    const r = await this.rpc(method, params);
    if (r.error) throw new Error(method + ": " + r.error.code + " " + r.error.message);
    return r.result;
  }

  // The next server request `method` (matching pred); removed from the inbox.
  waitFor(method, pred = () => true, timeoutMs = 15000) {
    return new Promise((ok, ko) => {
      const timer = setTimeout(() => ko(new Error("no " + method + " within " + timeoutMs + " ms; got " + this.inbox.map(m => m.method))), timeoutMs);
      const look = () => {
        const i = this.inbox.findIndex(m => m.method === method && pred(m.params || {}));
        if (i >= 0) { clearTimeout(timer); ok(this.inbox.splice(i, 1)[0].params); return true; }
        if (this.closed && method !== "closed") { clearTimeout(timer); ko(new Error("socket closed waiting for " + method)); return true; }
        return false;
      };
      if (!look()) this.waiters.push(look);
    });
  }

  waitClosed(timeoutMs = 15000) {
    return new Promise((ok, ko) => {
      const timer = setTimeout(() => ko(new Error("still open")), timeoutMs);
      const look = () => { if (this.closed) { clearTimeout(timer); ok(this.closeCode); return true; } return false; };
      if (!look()) this.waiters.push(look);
    });
  }

  // --- login -------------------------------------------------------------------------------------
  async login(login, passwd, token) {
    const loginParams = token ? { xui_sessid: token } : {};
    return this.rpc("login", { login, passwd, loginParams, userVariables: {} });
  }

  // What verto.js does on (re)connect: a credential-less login first; -32000 asks for credentials.
  async loginLikeVertoJs(login, passwd) {
    const first = await this.rpc("login", {});
    if (!first.error || first.error.code !== -32000) throw new Error("credential-less login answered " + JSON.stringify(first));
    const r = await this.login(login, passwd);
    if (r.error) throw new Error("login: " + JSON.stringify(r.error));
    return this.waitFor("verto.clientReady");
  }

  // --- calls -------------------------------------------------------------------------------------
  async _pc(callID, media) {
    const pc = new RTCPeerConnection({ iceServers: [] });
    const call = { pc, callID, state: "new", remote: null, tracks: [], channels: {}, dcIn: [] };
    pc.ondatachannel = (e) => this._dc(call, e.channel);
    pc.ontrack = (e) => {
      call.tracks.push(e.track.kind);
      // Received audio is only decoded and measured (totalAudioEnergy) while something plays it.
      if (e.track.kind === "audio") {
        const el = document.createElement("audio");
        el.autoplay = true;
        el.srcObject = e.streams[0] || new MediaStream([e.track]);
        document.body.appendChild(el);
        el.play().catch(err => this.log.push("audio play: " + err));
        call.audioEl = el;
      }
    };
    if (media && media.data) call.dcOpened = this._dc(call, pc.createDataChannel(media.data));  // before the offer: m=application
    if (media && (media.audio || media.video)) {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: !!media.audio, video: !!media.video });
      for (const t of stream.getTracks()) pc.addTrack(t, stream);
      call.stream = stream;
    }
    this.calls.set(callID, call);
    return call;
  }

  // Data channels: every channel of a call by label; what arrives in call.dcIn as
  // {label, text} or {label, bytes: [..]} (binary).
  _dc(call, ch) {
    ch.binaryType = "arraybuffer";
    call.channels[ch.label] = ch;
    ch.onmessage = (e) => {
      if (typeof e.data === "string") call.dcIn.push({ label: ch.label, text: e.data });
      else call.dcIn.push({ label: ch.label, bytes: Array.from(new Uint8Array(e.data)) });
      this._wake();
    };
    return new Promise((ok) => { if (ch.readyState === "open") ok(true); else ch.onopen = () => ok(true); });
  }

  openChannel(callID, label) { const c = this.calls.get(callID); return this._dc(c, c.pc.createDataChannel(label)); }

  waitChannel(callID, label, timeoutMs = 15000) {
    const t0 = Date.now();
    return new Promise((ok, ko) => {
      const look = () => {
        const c = this.calls.get(callID);
        const ch = c && c.channels[label];
        if (ch && ch.readyState === "open") return ok(true);
        if (Date.now() - t0 > timeoutMs) return ko(new Error("channel " + label + " never opened"));
        setTimeout(look, 50);
      };
      look();
    });
  }

  sendChannel(callID, label, data) {
    const ch = this.calls.get(callID).channels[label];
    ch.send(Array.isArray(data) ? new Uint8Array(data) : data);
    return true;
  }

  waitChannelMessage(callID, pred, timeoutMs = 15000) {
    const t0 = Date.now();
    return new Promise((ok, ko) => {
      const look = () => {
        const c = this.calls.get(callID);
        const i = c ? c.dcIn.findIndex(pred) : -1;
        if (i >= 0) return ok(c.dcIn.splice(i, 1)[0]);
        if (Date.now() - t0 > timeoutMs) return ko(new Error("no channel message; got " + JSON.stringify(c && c.dcIn)));
        setTimeout(look, 50);
      };
      look();
    });
  }

  // The suite only ever targets loopback: candidates for any other address are dropped from the
  // SDP we send, so no browser sends a connectivity check off the machine's loopback.
  static loopbackOnly(sdp) {
    return sdp.split("\r\n").filter(l => {
      if (!l.startsWith("a=candidate:")) return true;
      const addr = l.split(" ")[4];
      return addr === "127.0.0.1" || addr === "::1" || addr === "localhost";
    }).join("\r\n");
  }

  static gathered(pc, maxMs = 3000) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((ok) => {
      const t = setTimeout(ok, maxMs);  // loopback-only hosts may never report "complete"
      pc.addEventListener("icegatheringstatechange", () => { if (pc.iceGatheringState === "complete") { clearTimeout(t); ok(); } });
    });
  }

  async invite(destination, media = { audio: true, video: true }) {
    const callID = crypto.randomUUID();
    const call = await this._pc(callID, media);
    call.direction = "outbound";
    const offer = await call.pc.createOffer({ offerToReceiveAudio: true, offerToReceiveVideo: true });
    await call.pc.setLocalDescription(offer);
    await VertoClient.gathered(call.pc);
    const r = await this.result("verto.invite", {
      sdp: VertoClient.loopbackOnly(call.pc.localDescription.sdp),
      dialogParams: { callID, destination_number: destination, caller_id_name: "browser", caller_id_number: "browser",
                      useVideo: !!media.video, useStereo: false },
    });
    call.state = "trying";
    return { callID, message: r.message };
  }

  async _onRequest(method, p) {
    const call = p.callID ? this.calls.get(p.callID) : null;
    try {
      if ((method === "verto.media" || method === "verto.answer") && call && p.sdp && !call.remote) {
        call.remote = p.sdp;
        await call.pc.setRemoteDescription({ type: "answer", sdp: p.sdp });
        call.remoteSet = true;
      }
      if (method === "verto.answer" && call) call.state = "answered";
      if (method === "verto.media" && call) call.state = "early";
      if (method === "verto.bye" && call) { call.state = "ended"; call.cause = p.cause; call.pc.close(); }
      if (method === "verto.invite") this.calls.set(p.callID, { callID: p.callID, state: "ringing", offer: p.sdp, direction: "inbound" });
      if (method === "verto.attach") {
        // The page came back (or the server's media restarted): a fresh PeerConnection for the
        // call the server kept; the old one, if any, is done.
        const old = this.calls.get(p.callID);
        if (old && old.pc) old.pc.close();
        const c = await this._pc(p.callID, null);
        if (old && old.stream) {  // the camera and microphone go on in the new PeerConnection
          for (const t of old.stream.getTracks()) c.pc.addTrack(t, old.stream);
          c.stream = old.stream;
        }
        c.direction = "attached";
        c.state = "attached";
        await c.pc.setRemoteDescription({ type: "offer", sdp: p.sdp });
        const ans = await c.pc.createAnswer();
        await c.pc.setLocalDescription(ans);
        await this.result("verto.attach", { dialogParams: { callID: p.callID }, sdp: VertoClient.loopbackOnly(c.pc.localDescription.sdp) });
        c.state = "answered";
      }
    } catch (e) {
      this.log.push(method + ": " + e);
    }
  }

  async answer(callID, media = { audio: true, video: true }) {
    const ring = this.calls.get(callID);
    if (!ring) throw new Error("no inbound call " + callID);
    const call = await this._pc(callID, media);
    call.direction = "inbound";
    await call.pc.setRemoteDescription({ type: "offer", sdp: ring.offer });
    call.remoteSet = true;
    const ans = await call.pc.createAnswer();
    await call.pc.setLocalDescription(ans);
    await VertoClient.gathered(call.pc);
    const r = await this.result("verto.answer", { sdp: VertoClient.loopbackOnly(call.pc.localDescription.sdp), dialogParams: { callID } });
    call.state = "answered";
    return r;
  }

  hangup(callID, cause) {
    const p = { dialogParams: { callID } };
    if (cause) p.cause = cause;
    const c = this.calls.get(callID);
    if (c && c.pc) c.pc.close();
    return this.result("verto.bye", p);
  }

  // What the call's PeerConnection receives: frames decoded, audio energy, bytes, its state.
  async mediaStats(callID) {
    const c = this.calls.get(callID);
    if (!c || !c.pc) return null;
    const out = { connection: c.pc.connectionState, ice: c.pc.iceConnectionState, framesDecoded: 0, audioEnergy: 0,
                  audioPackets: 0, videoPackets: 0, videoCodec: "", audioCodec: "" };
    const stats = await c.pc.getStats();
    const codecs = {};
    stats.forEach(r => { if (r.type === "codec") codecs[r.id] = r.mimeType; });
    stats.forEach(r => {
      if (r.type !== "inbound-rtp") return;
      if (r.kind === "video") { out.framesDecoded += r.framesDecoded || 0; out.videoPackets += r.packetsReceived || 0; out.videoCodec = codecs[r.codecId] || ""; }
      if (r.kind === "audio") { out.audioEnergy += r.totalAudioEnergy || 0; out.audioPackets += r.packetsReceived || 0; out.audioCodec = codecs[r.codecId] || ""; }
    });
    return out;
  }

  // Polls mediaStats until pred(stats) holds; rejects with the last stats after timeoutMs.
  async waitStats(callID, pred, timeoutMs = 30000) {
    const t0 = Date.now();
    let s = null;
    while (Date.now() - t0 < timeoutMs) {
      s = await this.mediaStats(callID);
      if (s && pred(s)) return s;
      await new Promise(r => setTimeout(r, 200));
    }
    throw new Error("media stats never matched: " + JSON.stringify(s));
  }

  dtmf(callID, digits) { return this.result("verto.info", { dialogParams: { callID }, dtmf: digits }); }
  chat(callID, to, body) { return this.result("verto.info", { dialogParams: { callID }, msg: { to, body } }); }
  hold(callID, action) { return this.result("verto.modify", { dialogParams: { callID }, action }); }

  // verto.modify updateMedia: a new offer from this page's PeerConnection (an ICE restart when
  // asked), answered in the result with the server's SDP, applied here.
  async updateMedia(callID, opts = {}) {
    const c = this.calls.get(callID);
    const offer = await c.pc.createOffer({ iceRestart: !!opts.iceRestart });
    await c.pc.setLocalDescription(offer);
    await VertoClient.gathered(c.pc);
    const r = await this.result("verto.modify", { dialogParams: { callID }, action: "updateMedia",
                                                   sdp: VertoClient.loopbackOnly(c.pc.localDescription.sdp) });
    await c.pc.setRemoteDescription({ type: "answer", sdp: r.sdp });
    return r;
  }
}

window.VertoClient = VertoClient;
