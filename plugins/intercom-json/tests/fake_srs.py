"""A fake SRS stream server for the intercom-json media tests: HTTP-FLV on loopback, as the box's
SRS serves a screen's stream (document 000 section 5: GET /stream/<id>, answered 200 with
Content-Type video/x-flv and a chunked body that runs as long as the stream does).

Each path gets a behaviour (set before the request comes):
  FakeSrs.flv(data, gate=None, close=False,  200 + data in 1000-byte chunks, once gate (a
              paced=False)                    threading.Event) is set; then held open (a live
                                              stream that has nothing more) or closed. paced:
                                              one chunk per tag, sent at its timestamp (a live
                                              camera's rate, for a browser's jitter buffer)
  FakeSrs.raw(bytes)                          the bytes as the whole response, then close
  unknown path                                404, as SRS answers for a stream nobody publishes
requests[] records (path, connection number) in order; wait_request(path, n) waits for the nth.
Also: flv_frames(data) -> (video, audio) bus frames as the box must publish them (Annex B with
the SPS/PPS before each IDR; raw G.711), from an FLV, for hash comparison."""
import socket
import struct
import threading
import time


class FakeSrs:
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.routes = {}
        self.requests = []
        self.cond = threading.Condition()
        self.stop = threading.Event()
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    @staticmethod
    def flv(data, gate=None, close=False, paced=False):
        return ("flv-paced" if paced else "flv", data, gate, close)

    @staticmethod
    def raw(data):
        return ("raw", data, None, True)

    def close(self):
        self.stop.set()
        try:
            self.sock.close()
        except OSError:
            pass
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass

    def wait_request(self, path, n=1, timeout=10):
        with self.cond:
            if not self.cond.wait_for(lambda: sum(1 for p in self.requests if p == path) >= n, timeout):
                raise AssertionError(f"fake SRS: no request #{n} for {path}; got {self.requests}")

    def _accept(self):
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = c.recv(4096)
                if not d:
                    return
                buf += d
            line = buf.split(b"\r\n", 1)[0].decode()
            method, path, _ = line.split(" ", 2)
            with self.cond:
                self.requests.append(path)
                route = self.routes.get(path)
                self.cond.notify_all()
            if method != "GET" or route is None:
                c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            kind, data, gate, close = route
            if kind == "raw":
                c.sendall(data)
                return
            if gate is not None:
                gate.wait(30)
            start = time.monotonic()
            c.sendall(b"HTTP/1.1 200 OK\r\nServer: SRS/4.0.0\r\nContent-Type: video/x-flv\r\n"
                      b"Transfer-Encoding: chunked\r\nConnection: Keep-Alive\r\n\r\n")
            for at, piece in (_tags(data) if kind == "flv-paced" else
                              ((0, data[i:i + 1000]) for i in range(0, len(data), 1000))):
                if at and self.stop.wait(max(0.0, start + at - time.monotonic())):
                    return
                c.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
            if close:
                return
            self.stop.wait()  # a live stream with nothing more to send
        except OSError:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass


def _tags(data):
    """(seconds from the first tag, bytes): the header, then each tag with its PreviousTagSize."""
    pos = struct.unpack(">I", data[5:9])[0] + 4
    yield 0, data[:pos]
    first = None
    while pos + 11 <= len(data):
        size = int.from_bytes(data[pos + 1:pos + 4], "big")
        ts = int.from_bytes(data[pos + 4:pos + 7], "big") | data[pos + 7] << 24
        first = ts if first is None else first
        yield (ts - first) / 1000.0, data[pos:pos + 11 + size + 4]
        pos += 11 + size + 4


def flv_frames(data):
    """(video, audio): the frames an FLV holds, as bus payloads."""
    assert data[:3] == b"FLV"
    pos = struct.unpack(">I", data[5:9])[0] + 4
    sps = pps = None
    video, audio = [], []
    while pos + 11 <= len(data):
        t = data[pos] & 0x1f
        size = int.from_bytes(data[pos + 1:pos + 4], "big")
        body = data[pos + 11:pos + 11 + size]
        pos += 11 + size + 4
        if t == 9 and body[0] & 0x0f == 7:
            if body[1] == 0:
                rec = body[5:]
                n = int.from_bytes(rec[6:8], "big")
                sps = rec[8:8 + n]
                p = 8 + n + 1
                m = int.from_bytes(rec[p:p + 2], "big")
                pps = rec[p + 2:p + 2 + m]
            elif body[1] == 1:
                nals, i = [], 5
                while i < len(body):
                    n = int.from_bytes(body[i:i + 4], "big")
                    nals.append(body[i + 4:i + 4 + n])
                    i += 4 + n
                if any(x[0] & 0x1f == 5 for x in nals):
                    nals = [sps, pps] + nals
                video.append(b"".join(b"\x00\x00\x00\x01" + x for x in nals))
        elif t == 8 and body[0] >> 4 in (7, 8):
            audio.append(body[1:])
    return video, audio
