"""A phone-app simulator written from ../shared/seeds/001_d5f71942ad581933.txt.

Transport (plugins/xxxcid-gateway/README.md): one UDP socket; every JSON order is one datagram;
media datagrams on the same socket start with a tag byte (0x01 video, 0x02 audio). A heartbeat
{"order":"heartbeat","uid":..} every second keeps the phone online and its NAT binding open.
The simulator answers "over" with "over success" by itself (steps 16-17), like the app does.
"""
import json
import socket
import threading
import time

TAG_VIDEO, TAG_AUDIO = 1, 2


class PhoneSim:
    def __init__(self, server_port, uid="359608060142756", room="Y00010108090", community="花苑",
                 heartbeat=True, period=1.0, auto_over_success=True, host="127.0.0.1"):
        self.server = (host, server_port)
        self.uid, self.room, self.community = uid, room, community
        self.period = period
        self.auto_over_success = auto_over_success
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.cond = threading.Condition()
        self.orders = []
        self.video, self.audio = [], []
        self.stop_flag = False
        self.heartbeating = threading.Event()
        self.threads = [threading.Thread(target=self._rx, daemon=True), threading.Thread(target=self._hb, daemon=True)]
        for t in self.threads:
            t.start()
        if heartbeat:
            self.start_heartbeat()

    def close(self):
        self.stop_flag = True
        self.heartbeating.clear()
        for t in self.threads:
            t.join(2)
        self.sock.close()

    def start_heartbeat(self, wait=True):
        start = len(self.orders)
        self.heartbeating.set()
        if wait:
            self.wait("heartbeat ok", start=start)

    def stop_heartbeat(self):
        self.heartbeating.clear()

    def _hb(self):
        while not self.stop_flag:
            if self.heartbeating.is_set():
                self.send_json({"order": "heartbeat", "uid": self.uid})
            time.sleep(self.period)

    def _rx(self):
        while not self.stop_flag:
            try:
                data, _ = self.sock.recvfrom(65536)
            except (socket.timeout, OSError):
                continue
            if not data:
                continue
            with self.cond:
                if data[0] == TAG_VIDEO:
                    self.video.append(data[1:])
                elif data[0] == TAG_AUDIO:
                    self.audio.append(data[1:])
                else:
                    o = json.loads(data)
                    self.orders.append(o)
                    if o["order"] == "over" and self.auto_over_success:
                        self.send_json(dict(o, order="over success"))
                self.cond.notify_all()

    def send_json(self, obj):
        self.sock.sendto(json.dumps(obj, ensure_ascii=False).encode(), self.server)

    def send_raw(self, data):
        self.sock.sendto(data, self.server)

    def order(self, name, door, room=None, **extra):
        """Sends one of the document's phone orders for this uid."""
        o = {"order": name, "doorAddress": door, "roomAddress": room or self.room, "uid": self.uid,
             "community": self.community}
        o.update(extra)
        self.send_json(o)

    def send_audio(self, payload):
        self.sock.sendto(bytes([TAG_AUDIO]) + payload, self.server)

    def wait(self, name, timeout=10.0, start=0, pred=None):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for o in self.orders[start:]:
                    if o.get("order") == name and (pred is None or pred(o)):
                        return o
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"phone {self.uid}: no '{name}' within {timeout}s; got {self.orders[-10:]}")
                self.cond.wait(left)

    def mark(self):
        with self.cond:
            return len(self.orders)

    def count(self, name):
        with self.cond:
            return sum(1 for o in self.orders if o.get("order") == name)

    def wait_media(self, kind, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            lst = self.video if kind == "video" else self.audio
            while len(lst) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"phone {self.uid}: {len(lst)} {kind} datagrams, wanted {n}")
                self.cond.wait(left)
            return list(lst)
