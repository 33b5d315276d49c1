"""Registration (document section 3): join_family with a box-issued token -> join_accept(room_id)
or join_reject(reason); tokens issued and revoked through the admin API and `junction ctl`;
families, rooms and devices persist in the core's store across a restart."""
import base64
import json
import time

from intercom_env import (PLUGIN, BoxTest, INNER_SCREEN, OUTER_BOX, OuterBox, Screen, box_conf, free_port, main,
                          wait_until)


class RegistrationTest(BoxTest):
    def dynamic_routes(self, j):
        return sorted(r["uri"] for r in j.api("GET", "/api/v1/routes", expect=200)["dynamic"])

    def test_join_accepted_registers_routes_and_persists(self):
        j = self.start_box()
        issued = j.cmd(PLUGIN, "issue-token", {"device": "screen-a", "type": INNER_SCREEN, "room": "101"})
        self.assertEqual((issued["device"], issued["type"], issued["room"]), ("screen-a", INNER_SCREEN, "101"))
        self.assertGreater(issued["expires_at"], time.time())
        # The token carries the device id, type, room and expiry, and is signed.
        body, sig = issued["token"].split(".")
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        self.assertEqual((claims["dev"], claims["type"], claims["room"], claims["tid"]),
                         ("screen-a", INNER_SCREEN, "101", issued["token_id"]))
        self.assertTrue(sig)

        s = self.connect(j, Screen, "screen-a")
        reply = s.join(issued["token"])
        self.assertEqual(reply["name"], "join_accept")
        self.assertEqual(reply["values"], {"room_id": "101"})
        self.assertEqual(self.dynamic_routes(j), ["intercom:device/screen-a", "intercom:room/101"])
        lookup = j.api("GET", "/api/v1/routes/lookup?uri=intercom:room/101", expect=200)
        self.assertEqual(lookup["targets"], [{"uri": "intercom:room/101", "plugin": PLUGIN}])

        devices = j.cmd(PLUGIN, "list-devices")
        fam = [f for f in devices["families"] if f["room"] == "101"]
        self.assertEqual(len(fam), 1)
        self.assertEqual([(d["id"], d["type"], d["online"]) for d in fam[0]["devices"]], [("screen-a", INNER_SCREEN, True)])

        # A door unit joins with its own token (type OUTER_BOX), without a family.
        self.outer_box(j, "door-1")
        self.assertIn("intercom:device/door-1", self.dynamic_routes(j))
        devices = j.cmd(PLUGIN, "list-devices")
        self.assertEqual([f["room"] for f in devices["families"]], ["101"])
        self.assertEqual([(d["id"], d["type"], d["online"]) for d in devices["devices_without_family"]],
                         [("door-1", OUTER_BOX, True)])

        # The screen leaves: its routes go; the family and device stay in the store, offline.
        s.close()
        wait_until(lambda: "intercom:room/101" not in self.dynamic_routes(j), what="room route removed")
        fam = [f for f in j.cmd(PLUGIN, "list-devices")["families"] if f["room"] == "101"][0]
        self.assertEqual([(d["id"], d["online"]) for d in fam["devices"]], [("screen-a", False)])

    def test_join_rejected_bad_signature_expired_revoked_malformed(self):
        j = self.start_box(door_allow=[])  # no door addresses: every unjoined call_req is refused
        good = self.token(j, "screen-a")
        body, sig = good.split(".")

        cases = []
        # Bad signature: the payload changed (another room) but the signature is the old one.
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        claims["room"] = "999"
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode() + "." + sig
        cases.append(("forged payload", forged, "bad-signature"))
        flipped = body + "." + ("A" if sig[0] != "A" else "B") + sig[1:]
        cases.append(("flipped signature", flipped, "bad-signature"))
        # Expired: issued with an expiry in the past.
        expired = j.cmd(PLUGIN, "issue-token", {"device": "screen-old", "room": "101", "expires_at": int(time.time()) - 10})
        cases.append(("expired", expired["token"], "expired"))
        # Revoked: issued, then revoked by its id.
        revoked = j.cmd(PLUGIN, "issue-token", {"device": "screen-gone", "room": "101"})
        r = j.cmd(PLUGIN, "revoke-token", {"token_id": revoked["token_id"]})
        self.assertEqual(r["revoked"], [revoked["token_id"]])
        cases.append(("revoked", revoked["token"], "revoked"))
        cases.append(("not a token", "ASSDWQQWEQWEQWEQW==", "bad-token"))
        cases.append(("empty token", "", "bad-token"))  # a present but empty token is a bad token

        for what, token, reason in cases:
            with self.subTest(what):
                s = self.connect(j, Screen, what)
                reply = s.join(token)
                self.assertEqual(reply, {"id": reply["id"], "name": "join_reject", "values": {"reason": reason}})
                # Not joined: a call from it is refused, and nothing routes to it.
                s.call("c1", dest={"id": "102", "type": INNER_SCREEN})
                self.assertEqual(s.expect("call_reject", sid="c1")["values"]["reason"], "not-joined")
        self.assertEqual(self.dynamic_routes(j), [])

        # join_family without a token is a malformed message: an error, not a join_reject.
        s = self.connect(j, Screen, "no-token")
        s.send("join_family", {})
        e = s.expect("error")
        self.assertEqual((e["values"]["code"], e["values"]["reason"]), (422, "bad-values"))
        # The good token still works.
        self.assertEqual(self.connect(j, Screen, "ok").join(good)["name"], "join_accept")

    def test_revoke_disconnects_a_joined_device(self):
        j = self.start_box()
        s = self.screen(j, "screen-a")
        r = j.cmd(PLUGIN, "revoke-token", {"device": "screen-a"})
        self.assertEqual(r["disconnected"], 1)
        self.assertEqual(s.expect("join_reject")["values"]["reason"], "revoked")
        s.wait_closed()
        wait_until(lambda: self.dynamic_routes(j) == [], what="routes removed")
        s2 = self.connect(j, Screen, "again")
        tokens = [t for t in j.cmd(PLUGIN, "list-tokens") if t["device"] == "screen-a"]
        self.assertEqual([t["revoked"] for t in tokens], [True])  # its one token, revoked
        self.assertEqual(j.cmd(PLUGIN, "revoke-token", {}, expect=400)["error"], "give 'token_id', 'token' or 'device'")
        del s2

    def test_ctl_issue_and_revoke(self):
        j = self.start_box()
        rc, out, err = j.ctl("cmd", PLUGIN, "issue-token", json.dumps({"device": "door-9", "type": OUTER_BOX, "room": ""}))
        self.assertEqual(rc, 0, err)
        issued = json.loads(out)
        d = self.connect(j, OuterBox, "door-9")
        self.assertEqual(d.join(issued["token"])["name"], "join_accept")
        rc, out, err = j.ctl("cmd", PLUGIN, "revoke-token", json.dumps({"token": issued["token"]}))
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["revoked"], [issued["token_id"]])
        self.assertEqual(d.expect("join_reject")["values"]["reason"], "revoked")
        rc, out, err = j.ctl("cmd", PLUGIN, "list-devices")
        self.assertEqual(rc, 0, err)
        self.assertIn("door-9", out)

    def test_same_device_joining_again_replaces_the_old_connection(self):
        j = self.start_box()
        token = self.token(j, "screen-a")
        first = self.connect(j, Screen, "first")
        self.assertEqual(first.join(token)["name"], "join_accept")
        second = self.connect(j, Screen, "second")
        self.assertEqual(second.join(token)["name"], "join_accept")
        first.wait_closed()
        self.assertEqual(j.cmd(PLUGIN, "info")["joined"], 1)

    def test_families_devices_and_revocations_survive_a_restart(self):
        j = self.start_box()
        keep = self.token(j, "screen-a", room="101")
        gone = j.cmd(PLUGIN, "issue-token", {"device": "screen-b", "room": "102"})
        self.screen(j, "screen-b", room="102")
        self.assertEqual(self.connect(j, Screen, "a").join(keep)["name"], "join_accept")
        j.cmd(PLUGIN, "revoke-token", {"token_id": gone["token_id"]})
        for p in self.peers:
            p.close()
        self.peers.clear()
        self.assertEqual(j.stop(), 0)
        with j.cond:
            j.lines.clear()  # wait for the new process's "junction ready", not the old one's
        j.start()
        devices = j.cmd(PLUGIN, "list-devices")
        self.assertEqual(sorted(f["room"] for f in devices["families"]), ["101", "102"])
        self.assertEqual(sorted((d["id"], d["online"]) for f in devices["families"] for d in f["devices"]),
                         [("screen-a", False), ("screen-b", False)])
        self.assertEqual(self.connect(j, Screen, "a2").join(keep)["name"], "join_accept")
        self.assertEqual(self.connect(j, Screen, "b2").join(gone["token"])["values"]["reason"], "revoked")

    def test_secret_generated_when_not_configured(self):
        j = self.start_box(secret="")
        self.assertIn("generated a token signing secret", j.log())
        token = self.token(j, "s1")
        self.assertEqual(j.stop(), 0)
        j.start()  # the same secret comes back from the store: the token still verifies
        self.assertNotIn("generated a token signing secret", j.log())
        self.assertEqual(self.connect(j, Screen, "s1").join(token)["name"], "join_accept")

    def test_conf_errors_are_refused_with_file_and_line(self):
        base = {"listen": "127.0.0.1:1", "secret": "x" * 20}
        for extra, key, words in [({"secrett": "typo"}, "secrett", "unknown key"),
                                  ({"secret": 42}, "secret", "must be a string"),
                                  ({"secret": "short"}, "secret", "at least 16 characters"),
                                  ({"keep_interval_ms": "5s"}, "keep_interval_ms", "must be an integer"),
                                  ({"network": {"stream_path": "stream"}}, "network.stream_path", "must start and end with '/'"),
                                  ({"door_allow": ["10.0.0.0/33"]}, "door_allow", "not an IPv4/IPv6 address or prefix"),
                                  ({"door_allow": "127.0.0.1"}, "door_allow", "must be an array")]:
            with self.subTest(key):
                conf = {k: v for k, v in dict(base, **extra).items() if v is not None}
                j = self.server(plugins={PLUGIN: conf})
                j.start(expect_ready=False)
                rc = j.wait_exit(60)
                j.proc = None  # exited on purpose: nothing for tearDown to check
                self.assertNotEqual(rc, 0)
                self.assertRegex(j.log(), r"intercom-json\.toml:\d+: " + key.replace(".", r"\.") + ": .*" + words)


class DoorAllowTest(BoxTest):
    """Document 000: only indoor screens send join_family; a door unit never does. Its unjoined
    call_req is accepted from the door_allow prefixes (shipped: loopback), refused elsewhere."""

    def box_on(self, host, **conf):
        port = free_port()
        listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        j = self.server(plugins={PLUGIN: box_conf(port, listen=listen, **conf)})
        j.start()
        j.box_port = port
        return j

    def peer(self, j, cls, name, host):
        p = cls(j.box_port, host=host, name=name)
        self.peers.append(p)
        return p

    def joined_screen(self, j, host, device="screen-a", room="101"):
        s = self.peer(j, Screen, device, host)
        self.assertEqual(s.join(self.token(j, device, room=room))["name"], "join_accept")
        return s

    def call_is_accepted(self, j, host):
        s = self.joined_screen(j, host)
        door = self.peer(j, OuterBox, "door-unjoined", host)
        # It even claims to be a screen: an allow-listed unjoined caller is a door unit.
        door.call("u1", dest={"id": "101", "type": INNER_SCREEN}, src={"type": INNER_SCREEN, "audio_stream_id": "1"})
        req = s.expect("call_req", sid="u1")["values"]
        self.assertEqual(req["src"]["type"], OUTER_BOX)
        s.accept("u1")
        door.expect("call_accept", sid="u1")
        door.end("u1")
        self.assertEqual(s.expect("call_end", sid="u1")["values"]["reason"], "hangup")

    def call_is_refused(self, j, host):
        s = self.joined_screen(j, host)
        door = self.peer(j, OuterBox, "door-unjoined", host)
        door.call("u1", dest={"id": "101", "type": INNER_SCREEN})
        self.assertEqual(door.expect("call_reject", sid="u1")["values"]["reason"], "not-joined")
        j.wait_for_log(r"call_req u1 from .* refused: not joined, and not a door address of door_allow")
        self.assertEqual(self.box_calls(j), [])
        self.assertEqual(self.calls(j), [])
        # The same door unit with a token is accepted from there: the refusal was the address.
        self.assertEqual(door.join(self.token(j, "door-1", type=OUTER_BOX, room=""))["name"], "join_accept")
        door.call("u2", dest={"id": "101", "type": INNER_SCREEN})
        s.expect("call_req", sid="u2")

    def test_shipped_default_allows_ipv4_loopback(self):
        self.call_is_accepted(self.box_on("127.0.0.1"), "127.0.0.1")

    def test_shipped_default_allows_ipv6_loopback(self):
        self.call_is_accepted(self.box_on("::1"), "::1")

    def test_prefix_list_allows_ipv4(self):
        self.call_is_accepted(self.box_on("127.0.0.1", door_allow=["fd00::/8", "127.0.0.2/31", "127.0.0.1"]), "127.0.0.1")

    def test_ipv4_outside_the_list_is_refused(self):
        self.call_is_refused(self.box_on("127.0.0.1", door_allow=["10.0.0.0/8", "::1"]), "127.0.0.1")

    def test_ipv6_outside_the_list_is_refused(self):
        self.call_is_refused(self.box_on("::1", door_allow=["127.0.0.0/8", "fd00::/8"]), "::1")


if __name__ == "__main__":
    main()
