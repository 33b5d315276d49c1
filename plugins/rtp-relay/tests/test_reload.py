"""Hot reload of rtp-relay in the middle of a load of 1000 relayed sessions: no packet is lost,
every session survives with its ports, latches and stats (compared before and after), and the
new instance keeps relaying and answering ng."""
import os
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(__file__))
from junction_test import JunctionTest, free_port, main  # noqa: E402
from ngclient import NgClient, sdp, sdp_port, rtp  # noqa: E402

SESSIONS = 1000
ROUNDS = 10  # rounds (a packet per session) before the reload, and again after it; more go out during it
WINDOW = 5  # rounds in flight at most


def big_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE (root); else capped
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
    s.bind(("127.0.0.1", 0))
    return s


class ReloadTest(JunctionTest):
    def test_reload_under_1000_sessions_loses_nothing(self):
        self.reload_under_load()

    def test_reload_under_1000_sessions_on_two_media_loops(self):
        after = self.reload_under_load(media_loops=2)
        # Sessions were spread over both loops, and both relayed.
        self.assertEqual(after["media_loops"], 2)
        shards = {s["loop"]: s for s in after["shards"]}
        self.assertEqual(shards[0]["streams"], 0)
        self.assertEqual(shards[1]["streams"] + shards[2]["streams"], SESSIONS)
        self.assertLessEqual(abs(shards[1]["streams"] - shards[2]["streams"]), 1)
        self.assertGreater(shards[1]["forwarded"], 0)
        self.assertGreater(shards[2]["forwarded"], 0)

    def reload_under_load(self, media_loops=0):
        ng_port = free_port(socket.SOCK_DGRAM)
        lo = 10000  # this file's own range, below the kernel's ephemeral ports (32768+), see test_ng.relay_ports
        j = self.server(plugins={"rtp-relay": {"ng_listen": f"127.0.0.1:{ng_port}", "port_range": "media"}},
                        server={"media_loops": media_loops})
        j.write_core(dict(j.core, ports={"media": {"min": lo, "max": lo + 7999}}))
        j.start()
        ng = NgClient(ng_port)
        a, b = big_socket(), big_socket()
        self.addCleanup(ng.close)
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        a_port, b_port = a.getsockname()[1], b.getsockname()[1]
        to_a, to_b = [], []
        for i in range(SESSIONS):
            o = ng.cmd("offer", call_id=f"r{i}", from_tag="f", sdp=sdp(a_port))
            an = ng.cmd("answer", call_id=f"r{i}", from_tag="f", to_tag="t", sdp=sdp(b_port))
            assert o["result"] == "ok" and an["result"] == "ok", (o, an)
            to_b.append(sdp_port(o["sdp"]))
            to_a.append(sdp_port(an["sdp"]))
        session_of = {p: i for i, p in enumerate(to_b)}
        received = [0] * SESSIONS
        progress = threading.Condition()
        count = {"total": 0, "expected": None}  # expected: known once the last round is out
        errors = []  # an exception in a helper thread fails the test from the main thread

        def receiver():
            # Until every packet of every round arrived, or nothing more comes for 10 s.
            try:
                b.settimeout(10)
                while count["expected"] is None or count["total"] < count["expected"]:
                    data, addr = b.recvfrom(2048)
                    self.assertIn(addr[1], session_of)
                    received[session_of[addr[1]]] += 1
                    with progress:
                        count["total"] += 1
                        progress.notify_all()
            except Exception as e:  # noqa: BLE001 - reported by the main thread
                errors.append(e)
                with progress:
                    progress.notify_all()

        rx = threading.Thread(target=receiver)
        rx.start()
        reloaded = threading.Event()
        reload_reply = {}

        def reloader():
            try:
                status, body = j.request("POST", "/api/v1/plugins/rtp-relay/reload")
                reload_reply.update(status=status, body=body)
            except Exception as e:  # noqa: BLE001
                errors.append(e)
            finally:
                reloaded.set()

        payload = b"\xd5" * 20
        rounds = 0

        def send_round():
            # At most WINDOW rounds ahead of what B received (the relay's and B's socket queues
            # stay bounded even when a swap keeps the relay from relaying for a while).
            nonlocal rounds
            with progress:
                self.assertTrue(progress.wait_for(lambda: count["total"] >= (rounds - WINDOW) * SESSIONS or errors, timeout=30),
                                f"B stopped receiving: {count}")
            for i in range(SESSIONS):
                a.sendto(rtp(rounds, ssrc=i + 1, payload=payload), ("127.0.0.1", to_a[i]))
            rounds += 1

        for _ in range(ROUNDS):
            send_round()
        before = j.cmd("rtp-relay", "stats")
        threading.Thread(target=reloader).start()
        # Rounds keep going out until the reload's reply: input is arriving during the whole swap.
        while not reloaded.is_set():
            send_round()
        during = rounds - ROUNDS
        for _ in range(ROUNDS):  # and more after the new instance has taken over
            send_round()
        count["expected"] = SESSIONS * rounds
        rx.join(60)
        self.assertEqual(errors, [])
        self.assertFalse(rx.is_alive())
        self.assertEqual(reload_reply.get("status"), 200, reload_reply)
        self.assertGreaterEqual(during, 1)
        self.assertEqual(sum(received), SESSIONS * rounds, "packets lost across the reload")
        self.assertEqual(received, [rounds] * SESSIONS)
        if media_loops:
            # Input that reached the media loops during the swap was held there and replayed.
            loops = j.api("GET", "/api/v1/media", expect=200)["loops"]
            held, replayed = sum(l["held"] for l in loops), sum(l["replayed"] for l in loops)
            self.assertGreater(held, 0, loops)
            self.assertEqual(held, replayed, loops)
        after = j.cmd("rtp-relay", "stats")
        self.assertEqual(before["sessions"], SESSIONS)
        self.assertEqual(after["sessions"], SESSIONS)
        self.assertEqual(after["reloads"], 1)
        self.assertEqual(after["forwarded"], SESSIONS * rounds)
        self.assertEqual(after["session_rtp_packets"], SESSIONS * rounds)
        self.assertEqual(after["session_lost"], 0)
        self.assertGreaterEqual(after["rx"], before["rx"])
        # Per-session stats and the ports survived; ng still answers for old sessions.
        q = ng.cmd("query", call_id="r777")
        sides = q["medias"][0]["streams"]
        self.assertEqual(sides[0]["stats"]["packets"], rounds)
        self.assertEqual(sides[0]["stats"]["lost"], 0)
        self.assertEqual(sides[0]["local port"], to_a[777])
        self.assertEqual(sides[0]["latched"], "yes")
        # B -> A works after the reload too, and a new call can be set up.
        b.sendto(rtp(1, ssrc=9), ("127.0.0.1", to_b[5]))
        a.settimeout(5)
        data, addr = a.recvfrom(2048)
        self.assertEqual(addr[1], to_a[5])
        self.assertEqual(ng.cmd("offer", call_id="new", from_tag="f", sdp=sdp(a_port))["result"], "ok")
        self.assertEqual(ng.cmd("delete", call_id="r0")["result"], "ok")
        metrics = j.api("GET", "/metrics", expect=200)
        self.assertIn("junction_bus_payload_copies_total 0", metrics)
        print(f"\nrtp-relay reload under {SESSIONS} sessions ({media_loops} media loops): {rounds} rounds, {during} during the "
              f"reload, fds {j.fd_count()}, rss {j.rss_kb()} kB")
        return after


if __name__ == "__main__":
    main()
