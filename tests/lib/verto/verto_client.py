"""A Verto client for signalling tests that need no media (stdlib only, over tests/lib/ws_client.py).

Written from the Verto document (seeds/003): JSON-RPC 2.0 over one WebSocket, integer ids of our
own, server requests (verto.event, verto.invite, verto.media, verto.answer, verto.bye, verto.punt,
verto.attach, verto.clientReady, verto.ping ...) answered with a result at once, as verto.js does.
A reader thread files replies by id and server requests in arrival order; every wait has a timeout
and fails with what did arrive.
"""
import json
import os
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ws_client import WsClient  # noqa: E402

FAKE_SDP = ("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
            "a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n"
            "m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:{tag}\r\na=ice-pwd:pwpwpwpwpwpwpwpwpwpwpwpw\r\n"
            "a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n")


def fake_sdp(tag="abcd"):
    return FAKE_SDP.replace("{tag}", tag)


class VertoError(AssertionError):
    pass


class VertoClient:
    def __init__(self, port, host="127.0.0.1", path="/verto", headers=None, sessid=None, timeout=10):
        self.ws = WsClient(host, port, path, timeout=timeout, headers=headers)
        self.sessid = sessid or str(uuid.uuid4())
        self.next_id = 0
        self.cond = threading.Condition()
        self.replies = {}     # our id -> message
        self.requests = []    # server requests, in order (each answered with a result)
        self.raw = []         # every message, as received
        self.closed = False
        self.auto_reply = True
        self.timeout = timeout
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    # -- wire ----------------------------------------------------------------------------------
    def _read(self):
        try:
            while True:
                op, payload = self.ws.recv()
                if op == 8:
                    break
                if op in (9, 10):
                    continue
                msg = json.loads(payload.decode())
                for m in (msg if isinstance(msg, list) else [msg]):
                    with self.cond:
                        self.raw.append(m)
                        if "method" in m:
                            self.requests.append(m)
                        elif "id" in m:
                            self.replies[json.dumps(m["id"])] = m
                        self.cond.notify_all()
                    if "method" in m and self.auto_reply and "id" in m:
                        self.send({"jsonrpc": "2.0", "id": m["id"], "result": {"method": m["method"]}})
        except (ConnectionError, OSError, ValueError):
            pass
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def send(self, obj):
        self.ws.send(obj if isinstance(obj, (str, bytes)) else json.dumps(obj))

    def request(self, method, params=None, id=None):
        """Sends a request; returns the id it used."""
        if id is None:
            self.next_id += 1
            id = self.next_id
        p = dict(params or {})
        p.setdefault("sessid", self.sessid)
        self.send({"jsonrpc": "2.0", "method": method, "params": p, "id": id})
        return id

    def reply(self, id, timeout=None):
        key = json.dumps(id)
        with self.cond:
            if not self.cond.wait_for(lambda: key in self.replies or self.closed, timeout or self.timeout) or key not in self.replies:
                raise VertoError(f"no reply to id {id} (closed={self.closed}); got: {self.raw[-10:]}")
            return self.replies.pop(key)

    def call(self, method, params=None, timeout=None):
        """A request and its reply (the whole message: result or error)."""
        return self.reply(self.request(method, params), timeout)

    def result(self, method, params=None):
        r = self.call(method, params)
        if "result" not in r:
            raise VertoError(f"{method} failed: {r}")
        return r["result"]

    def wait_request(self, method, pred=None, timeout=None, remove=True):
        """The next server request `method` (matching pred(params))."""
        with self.cond:
            found = []

            def look():
                for m in self.requests:
                    if m.get("method") == method and (pred is None or pred(m.get("params", {}))):
                        found.append(m)
                        return True
                return self.closed

            self.cond.wait_for(look, timeout or self.timeout)
            if not found:
                raise VertoError(f"no {method} request (closed={self.closed}); got: {[m.get('method') for m in self.requests]}")
            if remove:
                self.requests.remove(found[0])
            return found[0]["params"]

    def has_request(self, method):
        with self.cond:
            return any(m.get("method") == method for m in self.requests)

    def wait_closed(self, timeout=None):
        with self.cond:
            if not self.cond.wait_for(lambda: self.closed, timeout or self.timeout):
                raise VertoError("socket still open")

    def close(self):
        self.ws.close()

    # -- Verto ---------------------------------------------------------------------------------
    def login(self, user, password, token=None):
        params = {"login": user, "passwd": password, "loginParams": {}, "userVariables": {}}
        if token:
            params["loginParams"]["xui_sessid"] = token
        return self.call("login", params)

    def login_ok(self, user, password, token=None):
        r = self.login(user, password, token)
        if "result" not in r:
            raise VertoError(f"login failed: {r}")
        self.wait_request("verto.clientReady")
        return r["result"]

    def invite(self, destination, sdp=None, call_id=None, name="caller"):
        call_id = call_id or str(uuid.uuid4())
        r = self.call("verto.invite", {"sdp": sdp if sdp is not None else fake_sdp(), "dialogParams": {
            "callID": call_id, "destination_number": destination, "caller_id_name": name, "caller_id_number": name,
            "useVideo": False}})
        return call_id, r

    def answer(self, call_id, sdp=None):
        return self.call("verto.answer", {"sdp": sdp if sdp is not None else fake_sdp("ans"), "dialogParams": {"callID": call_id}})

    def bye(self, call_id, cause=None):
        p = {"dialogParams": {"callID": call_id}}
        if cause:
            p["cause"] = cause
        return self.call("verto.bye", p)
