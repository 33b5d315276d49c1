"""Peers for rest-sip-capture's tests, all on loopback:
  - make_media(): an ffmpeg-encoded H.264 + PCMA clip, packetized into RTP (RFC 6184 FU-A / single
    NAL, G.711 20 ms) and written as two pcaps (video, audio) for sipp's play_pcap_video/audio;
  - Nginx: nginx with libnginx-mod-rtmp started as a normal process (generated conf, free port,
    temp dirs, `record all`), and ffprobe() reading a recorded stream back;
  - Backend: an HTTP server collecting the plugin's status events (can refuse the first N);
  - SipUas: a small SIP UAS in Python (answers INVITEs, records the offers, counts RTP and
    telephone-event packets, sends BYE / re-INVITE on demand) for what sipp cannot assert;
  - Sipp: sipp as the UAS with digest auth and RTP from the pcaps.
"""
import http.server
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "tests", "lib"))
from junction_test import free_port, wait_until  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FPS = 25
VIDEO_PT = 112
AUDIO_PT = 8


def have_tools():
    return all(shutil.which(t) for t in ("ffmpeg", "ffprobe", "sipp", "nginx")) and \
        os.path.exists("/usr/lib/nginx/modules/ngx_rtmp_module.so")


# --- media --------------------------------------------------------------------------------------

def _nals(data):
    """Annex-B -> list of NAL units (without start codes)."""
    out, i, n = [], 0, len(data)
    starts = [m.end() for m in re.finditer(b"\x00\x00\x01", data)]
    for k, s in enumerate(starts):
        e = starts[k + 1] - 3 if k + 1 < len(starts) else n
        nal = data[s:e]
        while nal.endswith(b"\x00"):
            nal = nal[:-1]
        if nal:
            out.append(nal)
    return out


def _access_units(nals):
    """Groups NAL units into access units at each AUD (x264 aud=1)."""
    aus, cur = [], []
    for nal in nals:
        if nal[0] & 0x1F == 9 and cur:
            aus.append(cur)
            cur = []
        cur.append(nal)
    if cur:
        aus.append(cur)
    return aus


def _rtp(pt, marker, seq, ts, ssrc, payload):
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


def h264_rtp(aus, ssrc=0x1234, mtu=1200):
    """(time_s, packet) for each RTP packet of the access units, 25 fps."""
    pkts, seq = [], 1000
    for i, au in enumerate(aus):
        ts = 90000 * i // FPS
        t = i / FPS
        units = []
        for nal in au:
            if len(nal) <= mtu:
                units.append(nal)
            else:
                hdr, body = nal[0], nal[1:]
                chunks = [body[k:k + mtu] for k in range(0, len(body), mtu)]
                for k, ch in enumerate(chunks):
                    fu_ind = (hdr & 0xE0) | 28
                    fu_hdr = (hdr & 0x1F) | (0x80 if k == 0 else 0) | (0x40 if k == len(chunks) - 1 else 0)
                    units.append(bytes([fu_ind, fu_hdr]) + ch)
        for k, u in enumerate(units):
            pkts.append((t, _rtp(VIDEO_PT, k == len(units) - 1, seq, ts, ssrc, u)))
            seq += 1
    return pkts


def pcma_rtp(data, ssrc=0x5678):
    pkts = []
    for j in range(0, len(data) // 160):
        pkts.append((j * 0.02, _rtp(AUDIO_PT, j == 0, 2000 + j, j * 160, ssrc, data[j * 160:(j + 1) * 160])))
    return pkts


def _csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def write_pcap(path, pkts, sport, dport=9):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for t, payload in pkts:
            udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                             socket.inet_aton("127.0.0.1"), socket.inet_aton("127.0.0.1"))
            ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
            frame = b"\x00" * 12 + b"\x08\x00" + ip + udp
            sec = int(t)
            f.write(struct.pack("<IIII", sec, int(round((t - sec) * 1e6)), len(frame), len(frame)))
            f.write(frame)


class Media:
    """The clip: frames / audio seconds sent, RTP packets, and the pcaps."""

    def __init__(self, d, seconds=4, bitrate="1M", size="320x240", vfilter=None):
        self.dir = d
        h264 = os.path.join(d, "clip.h264")
        alaw = os.path.join(d, "clip.alaw")
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc=size={size}:rate={FPS}", "-t", str(seconds), *(["-vf", vfilter] if vfilter else []), "-c:v", "libx264", "-profile:v",
                        "baseline", "-bf", "0", "-g", str(FPS), "-pix_fmt", "yuv420p", "-b:v", bitrate,
                        "-x264-params", "aud=1:repeat-headers=1", "-f", "h264", h264], check=True)
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        "sine=frequency=440:sample_rate=8000", "-t", str(seconds), "-c:a", "pcm_alaw", "-f", "alaw",
                        alaw], check=True)
        with open(h264, "rb") as f:
            self.aus = _access_units(_nals(f.read()))
        with open(alaw, "rb") as f:
            self.alaw = f.read()
        self.frames = len(self.aus)
        self.seconds = seconds
        self.video = h264_rtp(self.aus)
        self.audio = pcma_rtp(self.alaw)
        self.video_pcap = os.path.join(d, "video.pcap")
        self.audio_pcap = os.path.join(d, "audio.pcap")
        write_pcap(self.video_pcap, self.video, 6002)
        write_pcap(self.audio_pcap, self.audio, 6000)


# --- nginx-rtmp ---------------------------------------------------------------------------------

class Nginx:
    def __init__(self, port=None):
        self.dir = tempfile.mkdtemp(prefix="capture-nginx-")
        self.port = port or free_port()
        self.rec = os.path.join(self.dir, "rec")
        os.makedirs(self.rec)
        os.makedirs(os.path.join(self.dir, "logs"))
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(f"""load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
master_process off;
worker_processes 1;
error_log {self.dir}/logs/error.log info;
pid {self.dir}/nginx.pid;
worker_rlimit_nofile 8192;
events {{ worker_connections 4096; }}
rtmp {{
  server {{
    listen 127.0.0.1:{self.port};
    chunk_size 4096;
    application live {{
      live on;
      record all;
      record_path {self.rec};
      record_unique off;
    }}
  }}
}}
""")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["nginx", "-p", self.dir, "-c", self.conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)

        def up():
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                return False
        wait_until(up, 10, "nginx-rtmp listening")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def log(self):
        with open(os.path.join(self.dir, "logs", "error.log"), errors="replace") as f:
            return f.read()

    def wait_log(self, pattern, timeout=15):
        """Waits for a line of nginx's error log (info level: connects, publishes, disconnects)."""
        wait_until(lambda: re.search(pattern, self.log()), timeout, f"nginx log /{pattern}/")

    def url(self):
        return f"rtmp://127.0.0.1:{self.port}/live"

    def recording(self, stream):
        return os.path.join(self.rec, stream + ".flv")

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def ffprobe(path):
    """Streams (codec per type) and the packets of a recorded FLV."""
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_packets", "-of", "json", path],
                         capture_output=True, text=True, timeout=60)
    j = json.loads(out.stdout or "{}")
    codecs = {s["codec_type"]: s["codec_name"] for s in j.get("streams", [])}
    pk = {"video": [], "audio": []}
    idx = {s["index"]: s["codec_type"] for s in j.get("streams", [])}
    for p in j.get("packets", []):
        pk[idx[p["stream_index"]]].append(float(p.get("dts_time", p.get("pts_time", 0))))
    return codecs, pk


# --- backend ------------------------------------------------------------------------------------

class Backend:
    """Collects POSTed JSON events in order; refuses the first `fail_first` with 503."""

    def __init__(self, fail_first=0):
        self.events = []
        self.refused = 0
        self.fail_first = fail_first
        self.cond = threading.Condition()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.cond:
                    if outer.refused < outer.fail_first:
                        outer.refused += 1
                        self.send_response(503)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    outer.events.append(json.loads(body))
                    outer.cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def url(self):
        return f"http://127.0.0.1:{self.port}/events"

    def wait(self, pred, timeout=20, what="backend events"):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self.events):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}: {[(e.get('status'), e.get('rtmpStreamStatus')) for e in self.events]}")
                self.cond.wait(left)
            return list(self.events)

    def close(self):
        self.srv.shutdown()


# --- a SIP UAS in Python --------------------------------------------------------------------------

class SipUas:
    """Answers INVITEs on loopback UDP; RTP sockets for audio and video record what arrives."""

    transport = "UDP"

    def __init__(self, answer=True, code=200, ring=True, auth=None):
        self.sock = self._listen()
        self.port = self.sock.getsockname()[1]
        self.audio = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.audio.bind(("127.0.0.1", 0))
        self.video = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.video.bind(("127.0.0.1", 0))
        self.answer, self.code, self.ring = answer, code, ring
        self.invites, self.requests = [], []
        self.audio_pkts, self.video_pkts = [], []
        self.cond = threading.Condition()
        self.dialog = None
        self.peer = None
        self.cseq = 100
        self.stop_flag = False
        self.registered = []
        self.password = "1234"
        for s, lst in ((self.sock, None), (self.audio, self.audio_pkts), (self.video, self.video_pkts)):
            threading.Thread(target=self._loop, args=(s, lst), daemon=True).start()

    def _listen(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        return s

    def _loop(self, s, lst):
        s.settimeout(0.2)
        while not self.stop_flag:
            try:
                data, addr = s.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            if lst is not None:
                with self.cond:
                    lst.append(data)
                    self.cond.notify_all()
            else:
                self._sip(data.decode("utf-8", "replace"), addr)

    def _send(self, data, addr):
        self.sock.sendto(data, addr)

    @staticmethod
    def header(msg, name):
        m = re.search(r"^" + name + r":\s*(.*)$", msg, re.M | re.I)
        return m.group(1).strip() if m else None

    def _reply(self, req, code, reason, body="", extra=""):
        head = req.split("\r\n\r\n")[0].split("\r\n")
        lines = [f"SIP/2.0 {code} {reason}"]
        for h in head[1:]:
            n = h.split(":")[0].lower()
            if n in ("via", "from", "call-id", "cseq"):
                lines.append(h)
            elif n == "to":
                lines.append(h if ";tag=" in h or code == 100 else h + ";tag=uas1")
        lines.append(f"Contact: <sip:uas@127.0.0.1:{self.port}>")
        if extra:
            lines.append(extra)
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        return "\r\n".join(lines) + "\r\n\r\n" + body

    def sdp(self, direction="sendrecv"):
        return ("v=0\r\no=uas 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                f"m=audio {self.audio.getsockname()[1]} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n"
                f"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na={direction}\r\n"
                f"m=video {self.video.getsockname()[1]} RTP/AVP 112\r\na=rtpmap:112 H264/90000\r\n"
                f"a=fmtp:112 packetization-mode=1\r\na={direction}\r\n")

    def _sip(self, msg, addr):
        first = msg.split("\r\n", 1)[0]
        with self.cond:
            self.requests.append(msg)
            self.cond.notify_all()
        if first.startswith("SIP/2.0"):
            return
        method = first.split(" ")[0]
        if method == "INVITE" and ";tag=" not in (self.header(msg, "To") or "") :
            with self.cond:
                self.invites.append(msg)
                self.cond.notify_all()
            self.peer = addr
            self._send(self._reply(msg, 100, "Trying").encode(), addr)
            if self.ring:
                self._send(self._reply(msg, 180, "Ringing").encode(), addr)
            if self.answer:
                if self.code == 200:
                    self.dialog = msg
                    self._send(self._reply(msg, 200, "OK", self.sdp()).encode(), addr)
                else:
                    self._send(self._reply(msg, self.code, "Busy Here").encode(), addr)
        elif method == "REGISTER":
            auth = self.header(msg, "Authorization")
            if auth and self.digest_ok(auth, "REGISTER"):
                self.registered.append(msg)
                self._send(self._reply(msg, 200, "OK", extra="Expires: 3600").encode(), addr)
            else:
                self._send(self._reply(msg, 401, "Unauthorized",
                                             extra='WWW-Authenticate: Digest realm="uas.test", nonce="n0nce42", qop="auth", algorithm=MD5').encode(), addr)
        elif method in ("BYE", "INFO", "CANCEL", "OPTIONS", "INVITE"):
            self._send(self._reply(msg, 200, "OK", self.sdp() if method == "INVITE" else "").encode(), addr)
            if method == "CANCEL" and self.invites:
                self._send(self._reply(self.invites[-1], 487, "Request Terminated").encode(), addr)

    def digest_ok(self, auth, method):
        """RFC 2617 / 7616 check of an Authorization value against our nonce and password."""
        import hashlib
        f = dict(re.findall(r'(\w+)="?([^",]*)"?', auth))
        md5 = lambda x: hashlib.md5(x.encode()).hexdigest()  # noqa: E731
        ha1 = md5(f"{f.get('username')}:{f.get('realm')}:{self.password}")
        ha2 = md5(f"{method}:{f.get('uri')}")
        want = md5(f"{ha1}:{f.get('nonce')}:{f.get('nc')}:{f.get('cnonce')}:{f.get('qop')}:{ha2}")
        return f.get("nonce") == "n0nce42" and f.get("response") == want

    def wait(self, pred, timeout=10, what="SIP"):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}")
                self.cond.wait(left)

    def request(self, method, body="", ctype="application/sdp"):
        """An in-dialog request from the UAS side (BYE, re-INVITE)."""
        inv = self.dialog
        frm = self.header(inv, "From")
        to = self.header(inv, "To") + ";tag=uas1"
        contact = re.search(r"<(sip:[^>]+)>", self.header(inv, "Contact")).group(1)
        self.cseq += 1
        lines = [f"{method} {contact} SIP/2.0",
                 f"Via: SIP/2.0/{self.transport} 127.0.0.1:{self.port};branch=z9hG4bK{method}{self.cseq};rport",
                 "Max-Forwards: 70", f"From: {to}", f"To: {frm}", f"Call-ID: {self.header(inv, 'Call-ID')}",
                 f"CSeq: {self.cseq} {method}", f"Contact: <sip:uas@127.0.0.1:{self.port}>"]
        if body:
            lines.append(f"Content-Type: {ctype}")
        lines.append(f"Content-Length: {len(body)}")
        self._send(("\r\n".join(lines) + "\r\n\r\n" + body).encode(), self.peer)

    def send_rtp(self, media, audio=True, video=True):
        """Sends the clip's RTP to the addresses of the last INVITE's SDP, paced in real time."""
        inv = self.invites[-1]
        ports = dict(re.findall(r"m=(audio|video) (\d+)", inv))
        items = []
        if video:
            items += [(t, p, int(ports["video"])) for t, p in media.video]
        if audio:
            items += [(t, p, int(ports["audio"])) for t, p in media.audio]
        items.sort(key=lambda x: x[0])
        start = time.monotonic()
        for t, p, port in items:
            d = start + t - time.monotonic()
            if d > 0:
                time.sleep(d)  # pacing the sender like a real device, not test synchronisation
            (self.video if port == int(ports.get("video", 0)) else self.audio).sendto(p, ("127.0.0.1", port))

    def close(self):
        self.stop_flag = True
        for s in (self.sock, self.audio, self.video):
            s.close()


class SipStreamUas(SipUas):
    """SipUas over TCP, or TLS with `cert` (PEM chain) and `key`: it accepts connections and
    answers on the one a request came over (as RFC 3261 18.2.2 asks of a connection-oriented
    transport); `conns` lists the peers that connected."""

    def __init__(self, cert=None, key=None, **kw):
        self.ctx = None
        if cert:
            import ssl
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(cert, key)
        self.transport = "TLS" if cert else "TCP"
        self.conns = []
        self.tls_errors = []
        super().__init__(**kw)

    def _listen(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        return s

    def _loop(self, s, lst):
        if s is not self.sock:
            return super()._loop(s, lst)
        s.settimeout(0.2)
        while not self.stop_flag:
            try:
                c, addr = s.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._conn, args=(c, addr), daemon=True).start()

    def _conn(self, c, addr):
        if self.ctx:
            try:
                c.settimeout(10)
                c = self.ctx.wrap_socket(c, server_side=True)
            except OSError as e:
                with self.cond:
                    self.tls_errors.append(str(e))
                    self.cond.notify_all()
                c.close()
                return
        c.settimeout(0.2)
        with self.cond:
            self.conns.append((addr, c))
            self.cond.notify_all()
        buf = b""
        while not self.stop_flag:
            try:
                data = c.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            buf += data
            while b"\r\n\r\n" in buf:  # frame by Content-Length
                head, rest = buf.split(b"\r\n\r\n", 1)
                m = re.search(rb"^(?:Content-Length|l):\s*(\d+)", head, re.M | re.I)
                n = int(m.group(1)) if m else 0
                if len(rest) < n:
                    break
                msg, buf = head + b"\r\n\r\n" + rest[:n], rest[n:]
                if msg.strip():
                    self._sip(msg.decode("utf-8", "replace"), c)

    def close(self):
        super().close()
        for _, c in self.conns:
            c.close()

    def _send(self, data, conn):
        conn.sendall(data)  # conn: the connection the request came over (our addr argument)

    def _reply(self, req, code, reason, body="", extra=""):
        r = super()._reply(req, code, reason, body, extra)
        return r.replace(f"Contact: <sip:uas@127.0.0.1:{self.port}>",
                         f"Contact: <sip:uas@127.0.0.1:{self.port};transport={self.transport.lower()}>")


# --- sipp --------------------------------------------------------------------------------------

class Sipp:
    def __init__(self, scenario, media, user="10009", password="1234", extra=()):
        self.port = free_port()
        self.mport = free_port()
        args = ["sipp", "-sf", os.path.join(HERE, "sipp", scenario), "-i", "127.0.0.1", "-p", str(self.port),
                "-mi", "127.0.0.1", "-mp", str(self.mport), "-m", "1", "-nostdin", "-trace_err", *extra]
        # the scenario plays video.pcap / audio.pcap from its working directory: the clip's
        self.dir = media.dir
        self.proc = subprocess.Popen(args, cwd=self.dir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait(self, timeout=60):
        rc = self.proc.wait(timeout)
        err = self.proc.stderr.read().decode(errors="replace")
        logs = ""
        for f in os.listdir(self.dir):
            if f.endswith(".log"):
                with open(os.path.join(self.dir, f), errors="replace") as fh:
                    logs += fh.read()[-3000:]
        return rc, err + logs

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
