"""A door-station simulator written from ../shared/seeds/001_d5f71942ad581933.txt.

Speaks the binary UDP "XXXCID" protocol (canonical layout of ../shared/seeds/README.md):
  header "XXXCID"(6) cmd(1) type(1) [op(1) for cmd 150] caller addr(20) caller IP(4) ...
It retransmits its own requests until answered (cmd 154 until the resolve answer, op 1 until
the call answer or busy, op 30 until the hang-up answer), answers the server's commands
(talk op 6, unlock op 10, hang-up op 30) with type 2, and sends/receives media on separate
video and audio sockets.

`drop` (0..1) drops that share of door-side datagrams, in both directions, with a seeded RNG so
a run is reproducible.
"""
import random
import socket
import struct
import threading
import time

HEADER = b"XXXCID"
CALL, RESOLVE = 150, 154
OP_CALL, OP_BUSY, OP_ANSWER, OP_TALK, OP_UNLOCK, OP_HANGUP = 1, 2, 4, 6, 10, 30


def pad(addr):
    raw = addr.encode() if isinstance(addr, str) else addr
    return raw.ljust(20, b"\0")


def ip4(text):
    return socket.inet_aton(text)


def pack_call(op, caller, caller_ip, callee, callee_ip, type=1, mcast=None):
    body = HEADER + bytes([CALL, type, op]) + pad(caller) + ip4(caller_ip) + pad(callee) + ip4(callee_ip)
    if mcast is not None:
        body += bytes([mcast[0]]) + ip4(mcast[1])
    return body


def pack_resolve(caller, caller_ip, wanted):
    return HEADER + bytes([RESOLVE, 1]) + pad(caller) + ip4(caller_ip) + pad(wanted) + b"\0\0\0\0"


def unpad(raw):
    return raw.rstrip(b"\0").decode()


def parse(data):
    """The server's packets as dicts; None for anything not XXXCID."""
    if len(data) < 8 or data[:6] != HEADER:
        return None
    cmd, type = data[6], data[7]
    if cmd == RESOLVE:
        n = data[32]
        res = []
        for i in range(n):
            off = 33 + 24 * i
            res.append((unpad(data[off:off + 20]), socket.inet_ntoa(data[off + 20:off + 24])))
        return {"cmd": cmd, "type": type, "caller": unpad(data[8:28]), "resolved": res, "len": len(data)}
    op = data[8]
    return {"cmd": cmd, "type": type, "op": op, "caller": unpad(data[9:29]), "caller_ip": socket.inet_ntoa(data[29:33]),
            "callee": unpad(data[33:53]), "callee_ip": socket.inet_ntoa(data[53:57]), "len": len(data),
            "mcast": data[57] if len(data) == 62 else None}


class DoorSim:
    def __init__(self, server_port, video_port, audio_port, addr="M00010100", ip="127.0.0.1", drop=0.0, seed=1,
                 retransmit=0.15, retries=40, host="127.0.0.1"):
        self.server = (host, server_port)
        self.video_server = (host, video_port)
        self.audio_server = (host, audio_port)
        self.addr, self.ip = addr, ip
        self.drop = drop
        self.rng = random.Random(seed)
        self.rng_lock = threading.Lock()
        self.retransmit, self.retries = retransmit, retries
        self.sock = self._socket()
        self.video = self._socket()
        self.audio = self._socket()
        self.cond = threading.Condition()
        self.packets = []        # everything received (after the drop layer)
        self.commands = []       # (op, callee) of every distinct server command acted on
        self.audio_rx = []       # audio payloads received from the server
        self.sent = self.dropped = 0
        self.stop_flag = False
        self.threads = [threading.Thread(target=self._rx, daemon=True),
                        threading.Thread(target=self._rx_audio, daemon=True)]
        for t in self.threads:
            t.start()

    @staticmethod
    def _socket():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.2)
        return s

    def close(self):
        self.stop_flag = True
        for t in self.threads:
            t.join(2)
        for s in (self.sock, self.video, self.audio):
            s.close()

    def _lose(self):
        if not self.drop:
            return False
        with self.rng_lock:
            return self.rng.random() < self.drop

    def send_raw(self, data, to=None):
        self.sent += 1
        if self._lose():
            self.dropped += 1
            return
        self.sock.sendto(data, to or self.server)

    # -- receive ---------------------------------------------------------------------------------
    def _rx(self):
        while not self.stop_flag:
            try:
                data, _ = self.sock.recvfrom(4096)
            except (socket.timeout, OSError):
                continue
            if self._lose():
                self.dropped += 1
                continue
            p = parse(data)
            if p is None:
                continue
            # Record before answering: whatever the answer triggers (e.g. "unlock success" at the
            # phone) must never be observable before this packet is.
            with self.cond:
                self.packets.append(p)
                self.cond.notify_all()
            if p["cmd"] == CALL and p["type"] == 1 and p["op"] in (OP_TALK, OP_UNLOCK, OP_HANGUP):
                # A server command: answer every copy (the answer may have been lost), act once per
                # command as the door would (the server retransmits only until it gets an answer).
                self.send_raw(pack_call(p["op"], p["caller"], p["caller_ip"], p["callee"], p["callee_ip"], type=2))

    def _rx_audio(self):
        while not self.stop_flag:
            try:
                data, _ = self.audio.recvfrom(4096)
            except (socket.timeout, OSError):
                continue
            with self.cond:
                self.audio_rx.append(data)
                self.cond.notify_all()

    def wait(self, pred, timeout=10.0, what="packet"):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for p in self.packets:
                    if pred(p):
                        return p
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"door {self.addr}: no {what} within {timeout}s; got {self.packets[-10:]}")
                self.cond.wait(left)

    def count(self, pred):
        with self.cond:
            return sum(1 for p in self.packets if pred(p))

    def got(self, op, type=1, callee=None):
        return lambda p: p["cmd"] == CALL and p["op"] == op and p["type"] == type and (callee is None or p["callee"] == callee)

    def wait_audio(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.audio_rx) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"door {self.addr}: {len(self.audio_rx)} audio datagrams, wanted {n}")
                self.cond.wait(left)
            return list(self.audio_rx)

    # -- requests (retransmitted until answered) --------------------------------------------------
    def _request(self, data, pred, what, retries=None):
        start = len(self.packets)
        for _ in range((retries if retries is not None else self.retries) + 1):
            self.send_raw(data)
            deadline = time.monotonic() + self.retransmit
            with self.cond:
                while True:
                    for p in self.packets[start:]:
                        if pred(p):
                            return p
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self.cond.wait(left)
        return None

    def resolve(self, wanted, retries=None):
        """Steps 1-2: the resolve answer as [(addr, ip)], or None (silence)."""
        p = self._request(pack_resolve(self.addr, self.ip, wanted),
                          lambda p: p["cmd"] == RESOLVE and p["type"] == 2, "resolve answer", retries)
        return p and p["resolved"]

    def call(self, callee, callee_ip="127.0.0.1", mcast=(0, "0.0.0.0")):
        """Step 3: 'answer' (op 4), 'busy' (op 2) or None. Retransmits while the phone rings."""
        p = self._request(pack_call(OP_CALL, self.addr, self.ip, callee, callee_ip, mcast=mcast),
                          lambda p: p["cmd"] == CALL and p["type"] == 1 and p["op"] in (OP_ANSWER, OP_BUSY, OP_TALK)
                          and p["callee"] == callee, "call answer")
        if p is None:
            return None
        return "busy" if p["op"] == OP_BUSY else "answer"

    def hangup(self, callee, callee_ip="127.0.0.1"):
        """Step 15: True once the server answers with type 2 op 30 (step 18)."""
        p = self._request(pack_call(OP_HANGUP, self.addr, self.ip, callee, callee_ip),
                          self.got(OP_HANGUP, type=2, callee=callee), "hang-up answer")
        return p is not None

    # -- media ------------------------------------------------------------------------------------
    def send_video(self, payload):
        self.video.sendto(payload, self.video_server)

    def send_audio(self, payload):
        self.audio.sendto(payload, self.audio_server)
