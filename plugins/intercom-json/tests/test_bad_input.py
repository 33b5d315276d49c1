"""Transport and bad input: messages split across TCP segments or packed into one, and every kind
of bad input, each with its observable reply (the error message of the plugin README), none of
which disturbs a call in progress on another connection."""
import json
import socket
import time

from intercom_env import (PLUGIN, BoxTest, INNER_SCREEN, Screen, main, metric, series, wait_until)

ROOM = {"id": "101", "type": INNER_SCREEN}


class BadInputTest(BoxTest):
    def call_in_progress(self, j):
        """A door unit talking to a screen (answered), to watch while others misbehave."""
        s = self.screen(j, "screen-1")
        door = self.outer_box(j)
        door.call("live", dest=ROOM)
        s.expect("call_req", sid="live")
        s.accept("live")
        door.expect("call_accept", sid="live")
        return s, door

    def assert_call_unharmed(self, j, s, door):
        self.assertEqual([c["state"] for c in self.calls(j)], ["answered"])
        s.open_door("live")
        door.expect("open_door", sid="live")
        s.expect_none("call_end")
        door.expect_none("call_end")
        self.assertEqual([m for m in s.received + door.received if m["name"] == "error"], [])

    def test_split_and_packed_messages(self):
        j = self.start_box()
        token = self.token(j, "screen-split")
        s = self.connect(j, Screen, "split")
        frame = json.dumps({"id": "1", "name": "join_family", "values": {"token": token}}).encode() + b"\0"
        s.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(frame), 7):  # 7-byte TCP segments
            s.send_raw(frame[i:i + 7])
            time.sleep(0.005)  # pacing so the segments travel apart (not a synchronisation: no reply is awaited)
        self.assertEqual(s.expect("join_accept")["values"], {"room_id": "101"})

        # Several messages (and empty frames, whitespace, newlines as in the document) in one write.
        door = self.outer_box(j)
        packed = b"".join(json.dumps({"id": str(i), "name": "call_req", "values": {
            "sid": f"p{i}", "src": {"type": 3}, "dest": ROOM}}).encode() + b"\0\n\0 \0" for i in range(3))
        door.send_raw(packed)
        for i in range(3):
            s.expect("call_req", sid=f"p{i}")
        self.assertEqual(len(self.calls(j)), 3)
        self.assertEqual(door.garbage + s.garbage, [])
        self.assertEqual([m for m in door.received if m["name"] == "error"], [])

    def test_every_kind_of_bad_input_gets_its_reply(self):
        j = self.start_box(max_message=4096)
        s, door = self.call_in_progress(j)
        huge = json.dumps({"id": "big", "name": "call_keep", "values": {"sid": "x" * 6000}}).encode()
        cases = [
            # (what, bytes sent, expected code, reason, words in the message)
            ("oversized", huge + b"\0", 413, "oversized", "exceeds the limit of 4096"),
            ("not JSON", b"hello\0", 400, "bad-json", "not valid JSON"),
            ("the document's sample (missing comma)",
             b'{"id":"1000123","name":"call_in","values":{"token":"ASSDWQQWEQWEQWEQW==" "dest":"11.2.1.1"}}\0',
             400, "bad-json", ""),
            ("binary", bytes(range(1, 256)) + b"\0", 400, "bad-json", ""),
            ("invalid UTF-8 in a string", b'{"id":"u","name":"call_keep","values":{"sid":"\xff\xfe"}}\0', 400, "bad-json", ""),
            ("array", b"[1,2,3]\0", 400, "bad-message", "JSON object"),
            ("no name", b'{"id":"n1","values":{}}\0', 400, "bad-message", "'name'"),
            ("no values", b'{"id":"v1","name":"call_keep"}\0', 400, "bad-message", "'values'"),
            ("values not a dict", b'{"id":"v2","name":"call_keep","values":"sid"}\0', 400, "bad-message", "'values'"),
            ("unknown name", b'{"id":"u1","name":"call_ring","values":{}}\0', 404, "unknown-name", "call_ring"),
            ("removed in v0.4", b'{"id":"u2","name":"call_in","values":{}}\0', 404, "unknown-name", "use call_req"),
            ("box-only message", b'{"id":"u3","name":"join_accept","values":{"room_id":"1"}}\0', 405, "unexpected-name", ""),
            ("call_req without sid", b'{"id":"r1","name":"call_req","values":{"dest":{"id":"101"}}}\0', 422, "bad-values", "sid"),
            ("bad field type", b'{"id":"r2","name":"call_req","values":{"sid":"q","dest":{"type":"screen"}}}\0',
             422, "bad-values", "type"),
            ("call_keep for no call", b'{"id":"k1","name":"call_keep","values":{"sid":"nope"}}\0', 404, "unknown-sid", ""),
        ]
        for what, data, code, reason, words in cases:
            with self.subTest(what):
                p = self.connect(j, Screen, what.replace(" ", "-"))
                p.send_raw(data)
                e = p.expect("error")
                self.assertEqual((e["values"]["code"], e["values"]["reason"]), (code, reason), e)
                self.assertIn(words, e["values"]["message"])
                if reason not in ("bad-json", "oversized") and what != "array":
                    self.assertEqual(e["id"], json.loads(data[:-1])["id"])
                # The connection still works after one bad message.
                p.send("call_keep", {"sid": "nope"}, id="after")
                self.assertEqual(p.expect("error")["id"], "after")
                p.close()
        j.wait_for_log("bad message from 127.0.0.1")
        self.assertIn('intercom_bad_messages_total{plugin="intercom-json",reason="bad-json"}',
                      j.api("GET", "/metrics", expect=200))
        self.assert_call_unharmed(j, s, door)

        # The oversized message was skipped up to its \0: the same write's next message is served.
        p = self.connect(j, Screen, "resync")
        p.send_raw(huge[:3000])
        time.sleep(0.05)  # pacing: the two halves travel apart (the check below waits on the replies)
        p.send_raw(huge[3000:] + b"\0" + json.dumps({"id": "next", "name": "call_keep", "values": {"sid": "z"}}).encode() + b"\0")
        self.assertEqual(p.expect("error")["values"]["reason"], "oversized")
        self.assertEqual(p.expect("error")["id"], "next")

    def test_bogus_message_names_create_no_metric_series(self):
        # Before any join, a peer sends names of its own: they are counted as "unknown", never as
        # labels of their own (a peer must not grow the metric set at will).
        j = self.start_box(bad_limit=1000)
        p = self.connect(j, Screen, "namer")
        for i in range(20):
            p.send("zz-bogus-%d" % i, {}, id="b%d" % i)
            self.assertEqual(p.expect("error")["id"], "b%d" % i)
        p.send("call_keep", {"sid": "nope"}, id="k")  # a name of the protocol keeps its own label
        self.assertEqual(p.expect("error")["id"], "k")
        self.assertEqual(series(j, "intercom_messages_received_total"),
                         ['{plugin="intercom-json",name="call_keep"}', '{plugin="intercom-json",name="unknown"}'])
        self.assertEqual(metric(j, "intercom_messages_received_total", 'name="unknown"'), 20)
        self.assertNotIn("zz-bogus", j.api("GET", "/metrics", expect=200))

    def test_a_peer_that_keeps_sending_garbage_is_disconnected(self):
        j = self.start_box(bad_limit=5)
        s, door = self.call_in_progress(j)
        g = self.connect(j, Screen, "garbage")
        for i in range(10):
            try:
                g.send_raw(b"\x00garbage %d\0" % i)
            except OSError:
                break
        g.wait_closed()
        errors = [m["values"]["reason"] for m in g.received if m["name"] == "error"]
        self.assertEqual(errors, ["bad-json"] * 5 + ["too-many-errors"])
        j.wait_for_log("disconnecting 127.0.0.1")
        # A joined device that turns bad is disconnected the same way, and its call ends cleanly.
        s2 = self.screen(j, "screen-2", "102")
        door.call("other", dest={"id": "102", "type": INNER_SCREEN})
        s2.expect("call_req", sid="other")
        for _ in range(5):
            s2.send_raw(b"{\0")
        s2.wait_closed()
        self.assertEqual(door.expect("call_reject", sid="other")["values"]["reason"], "connection-lost")
        # Raw sockets that send nothing but noise and vanish.
        for _ in range(5):
            raw = socket.create_connection(("127.0.0.1", j.box_port))
            raw.sendall(b"\xff" * 100)
            raw.close()
        self.assert_call_unharmed(j, s, door)
        wait_until(lambda: j.cmd(PLUGIN, "info")["connections"] == 2, what="only the two call parties left")


if __name__ == "__main__":
    main()
