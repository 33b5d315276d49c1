"""Test peers for the intercom box, written from the protocol document
(../shared/seeds/000_820875a89618f866.txt, v0.4), not from the plugin's code.

Transport: TCP; every message is a JSON object {"id": string, "name": string, "values": dict|array}
and consecutive messages are separated by a single NUL byte ("SP = '\\0'").

Devices (CallPeerType): INNER_BOX=1, INNER_SCREEN=2, OUTER_BOX=3, PROPERTY_APP=4, PROPERTY_CENTER=5.
  Screen       an indoor screen: join_family(token) -> join_accept(room_id) | join_reject(reason)
  OuterBox     a door unit (单元机): places call_req to a family, receives open_door
  PropertyApp  the property's phone app
  DialIn       a device listening for the box's own TCP connection (a call by dest.ip/port:
               "主叫方开始呼叫时，建立到被叫端的tcp连接")
Messages: call_req{sid, src{id,type,ip,port,audiostreamid,videostreamid}, dest{...}},
call_accept{sid}, call_reject{sid,reason,message}, call_end{sid,reason,message}, call_keep{sid},
open_door{sid}, seczone_emergency{port,name,message}.
"""
import json
import socket
import threading
import time

INNER_BOX, INNER_SCREEN, OUTER_BOX, PROPERTY_APP, PROPERTY_CENTER = 1, 2, 3, 4, 5
SYNC_PREFIX = "__sync-"


class Peer:
    """One TCP connection speaking \\0-separated JSON messages. A reader thread collects what
    arrives; expect() takes the first matching message out of what has arrived (or waits)."""

    type = 0

    def __init__(self, port=None, host="127.0.0.1", name="peer", sock=None, timeout=10):
        self.name = name
        self.sock = sock if sock is not None else socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(None)
        self.inbox = []        # parsed messages not yet taken by expect()
        self.received = []     # everything ever received, for failure messages
        self.garbage = []      # frames that were not JSON
        self.closed = False
        self.synced = set()    # ids of answered sync() probes (kept out of inbox and received)
        self.cond = threading.Condition()
        self.serial = 0
        self.keepers = {}
        self.send_lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    # -- wire --------------------------------------------------------------------------------
    def _read(self):
        buf = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            buf += data
            while b"\0" in buf:
                frame, buf = buf.split(b"\0", 1)
                if not frame.strip():
                    continue
                try:
                    msg = json.loads(frame)
                except ValueError:
                    with self.cond:
                        self.garbage.append(frame)
                    continue
                with self.cond:
                    if msg.get("name") == "error" and str(msg.get("id", "")).startswith(SYNC_PREFIX):
                        self.synced.add(msg["id"])
                    else:
                        self.inbox.append(msg)
                        self.received.append(msg)
                    self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def next_id(self):
        self.serial += 1
        return f"{self.name}-{self.serial}"

    def send(self, name, values=None, id=None):
        msg = {"id": id if id is not None else self.next_id(), "name": name, "values": values if values is not None else {}}
        self.send_raw(json.dumps(msg).encode() + b"\0")
        return msg["id"]

    def send_raw(self, data):
        with self.send_lock:
            self.sock.sendall(data)

    def close(self):
        for sid in list(self.keepers):
            self.stop_keep(sid)
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def abort(self):
        """Drops the connection at once (RST), as a device losing power or network would."""
        for sid in list(self.keepers):
            self.stop_keep(sid)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        try:
            self.sock.shutdown(socket.SHUT_RD)  # wakes the reader thread, which holds the socket
        except OSError:
            pass
        self.sock.close()  # linger 0: the box sees a reset, not an orderly close

    # -- waiting -------------------------------------------------------------------------------
    @staticmethod
    def _matches(msg, name, match):
        if name is not None and msg.get("name") != name:
            return False
        values = msg.get("values")
        for k, v in match.items():
            if not isinstance(values, dict) or values.get(k) != v:
                return False
        return True

    def expect(self, name=None, timeout=5.0, **match):
        """The first message called `name` whose values contain `match`; waits up to timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i, msg in enumerate(self.inbox):
                    if self._matches(msg, name, match):
                        return self.inbox.pop(i)
                left = deadline - time.monotonic()
                if left <= 0 or (self.closed and not any(self._matches(m, name, match) for m in self.inbox)):
                    raise AssertionError(f"{self.name}: no {name} {match} within {timeout}s"
                                         f"{' (connection closed)' if self.closed else ''}; received: {self.received}")
                self.cond.wait(min(left, 0.5) if not self.closed else 0.05)

    def sync(self, timeout=5.0):
        """A round trip through the box on this connection: call_keep for a sid no call has, whose
        error reply (kept out of inbox) comes after everything the box had queued to this peer
        before it read the probe. The box handles one connection's messages in order, and what a
        message triggers for other connections (core call events included) is sent before the
        next message is read."""
        with self.cond:
            self.serial += 1
            probe = f"{SYNC_PREFIX}{self.serial}"
        self.send("call_keep", {"sid": SYNC_PREFIX}, id=probe)
        deadline = time.monotonic() + timeout
        with self.cond:
            while probe not in self.synced:
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    raise AssertionError(f"{self.name}: no answer to the sync probe{' (connection closed)' if self.closed else ''}")
                self.cond.wait(left)

    def expect_none(self, name=None, after=(), **match):
        """Asserts that no such message has come, by events rather than a wait: each peer of
        `after` (whose messages could cause it) and then this one make a sync() round trip, so
        anything the box sent because of what they sent before has arrived."""
        for p in list(after) + [self]:
            p.sync()
        with self.cond:
            for msg in self.inbox:
                if self._matches(msg, name, match):
                    raise AssertionError(f"{self.name}: unexpected {msg}")

    def take_all(self, name=None):
        with self.cond:
            taken = [m for m in self.inbox if name is None or m.get("name") == name]
            self.inbox = [m for m in self.inbox if m not in taken]
            return taken

    def wait_closed(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.name}: the box did not close the connection within {timeout}s")
                self.cond.wait(left)


class Device(Peer):
    """A device of the document: registration, calls, keepalive."""

    # -- 3. registration -------------------------------------------------------------------------
    def join(self, token):
        """join_family(token); returns the join_accept or join_reject message."""
        self.send("join_family", {"token": token})
        deadline = time.monotonic() + 5
        while True:
            with self.cond:
                for i, msg in enumerate(self.inbox):
                    if msg.get("name") in ("join_accept", "join_reject", "error"):
                        return self.inbox.pop(i)
                if time.monotonic() > deadline or self.closed:
                    raise AssertionError(f"{self.name}: no answer to join_family; received {self.received}")
                self.cond.wait(0.1)

    # -- 2. call control -------------------------------------------------------------------------
    def call(self, sid, dest=None, src=None, **extra):
        """call_req; src/dest are dicts of the document's fields (id, type, ip, port, stream ids)."""
        values = {"sid": sid, "src": dict({"type": self.type}, **(src or {})), "dest": dest or {}}
        values.update(extra)
        return self.send("call_req", values)

    def accept(self, sid, **values):
        return self.send("call_accept", dict({"sid": sid}, **values))

    def reject(self, sid, reason="busy", message=""):
        return self.send("call_reject", {"sid": sid, "reason": reason, "message": message})

    def end(self, sid, reason="hangup", message=""):
        return self.send("call_end", {"sid": sid, "reason": reason, "message": message})

    def keep(self, sid):
        return self.send("call_keep", {"sid": sid})

    def open_door(self, sid):
        return self.send("open_door", {"sid": sid})

    def keep_alive(self, sid, interval):
        """Sends call_keep every `interval` seconds from a thread until stop_keep(sid)."""
        stop = threading.Event()

        def run():
            while not stop.is_set():
                try:
                    self.keep(sid)
                except OSError:
                    return
                stop.wait(interval)

        self.keepers[sid] = stop
        threading.Thread(target=run, daemon=True).start()

    def stop_keep(self, sid):
        stop = self.keepers.pop(sid, None)
        if stop:
            stop.set()


class Screen(Device):
    type = INNER_SCREEN


class OuterBox(Device):
    type = OUTER_BOX


class PropertyApp(Device):
    type = PROPERTY_APP


class PropertyCenter(Device):
    type = PROPERTY_CENTER


class DialIn:
    """A device that listens for the box: a call_req with dest.ip/port makes the box connect here."""

    def __init__(self, cls=OuterBox, name="dialin"):
        self.cls = cls
        self.name = name
        self.srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]

    def accept(self, timeout=5.0):
        self.srv.settimeout(timeout)
        conn, _ = self.srv.accept()
        return self.cls(sock=conn, name=self.name)

    def close(self):
        self.srv.close()
