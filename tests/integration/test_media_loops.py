"""The core's media loops (server.media_loops): sockets bound with jn_udp_options.loop run their
on_udp on pinned threads of their own, the control loop is refused to them, the bus hands their
packets to control-loop subscribers by reference, and a hot reload under load loses nothing."""
import itertools
import json
import os
import re
import socket
import threading

from junction_test import JunctionTest, main, wait_until


def metric(text, name, labels):
    m = re.search(re.escape(name) + r"\{" + re.escape(labels) + r"[^}]*\} (\S+)", text)
    return float(m.group(1)) if m else None


class MediaLoopsTest(JunctionTest):
    def start(self, loops=2, sockets=4, cpus=None):
        server = {"media_loops": loops}
        if cpus is not None:
            server["media_loop_cpus"] = cpus
        j = self.server(plugins={"media-echo": {"sockets": sockets}}, server=server).start()
        ports = j.cmd("media-echo", "ports")
        return j, ports

    def echo(self, port, payload, sock=None):
        s = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(5)
        s.sendto(payload, ("127.0.0.1", port))
        data, addr = s.recvfrom(2048)
        self.assertEqual(data, payload)
        self.assertEqual(addr[1], port)  # answered from the socket it was sent to
        if sock is None:
            s.close()

    def test_sockets_run_on_their_own_pinned_threads(self):
        ncpu = os.cpu_count()
        cpus = [ncpu - 1, 0]
        j, ports = self.start(loops=2, sockets=4, cpus=cpus)
        self.assertEqual([p["loop"] for p in ports], [1, 2, 1, 2])
        for i, p in enumerate(ports):
            self.echo(p["port"], b"hello %d" % i)
        st = j.cmd("media-echo", "stats")
        threads = [s["thread"] for s in st["sockets"]]
        # Same loop -> same thread; two loops -> two threads; neither is the control loop's.
        self.assertEqual(threads[0], threads[2])
        self.assertEqual(threads[1], threads[3])
        self.assertNotEqual(threads[0], threads[1])
        self.assertNotIn(st["control_thread"], threads)
        self.assertEqual([s["echoed"] for s in st["sockets"]], [1, 1, 1, 1])
        # Pinned where the conf says (loop k on media_loop_cpus[k-1]).
        self.assertEqual(os.sched_getaffinity(threads[0]), {cpus[0]})
        self.assertEqual(os.sched_getaffinity(threads[1]), {cpus[1]})
        # A control-loop service called from a media loop is refused, with a log line.
        self.assertEqual(st["control_only_status"], -11)  # JN_ERR_WRONG_THREAD
        j.wait_for_log("event_publish called from media loop")
        self.assertEqual(st["send_status"], 0)
        m = j.api("GET", "/metrics", expect=200)
        self.assertEqual(metric(m, "junction_media_rx_packets_total", 'loop="1"'), 2)
        self.assertEqual(metric(m, "junction_media_rx_packets_total", 'loop="2"'), 2)
        self.assertEqual(metric(m, "junction_media_tx_packets_total", 'loop="1"'), 2)
        self.assertEqual(metric(m, "junction_media_sockets", 'loop="2"'), 2)
        self.assertIn("junction_bus_payload_copies_total 0", m)
        # The admin API and ctl show the same.
        media = j.api("GET", "/api/v1/media", expect=200)["loops"]
        self.assertEqual([(l["loop"], l["cpu"], l["pinned"], l["sockets"], l["rx_packets"]) for l in media],
                         [(1, cpus[0], True, 2, 2), (2, cpus[1], True, 2, 2)])
        rc, out, err = j.ctl("media")
        self.assertEqual(rc, 0, err)
        lines = [l.split() for l in out.splitlines()]
        self.assertEqual(lines[0][:5], ["LOOP", "CPU", "PINNED", "SOCKETS", "RX"])
        self.assertEqual([l[:5] for l in lines[1:]], [["1", str(cpus[0]), "yes", "2", "2"], ["2", str(cpus[1]), "yes", "2", "2"]])
        rc, out, err = j.ctl("--json", "media")
        self.assertEqual(rc, 0, err)
        # Two snapshots: buffers in flight (released to a loop's pool through its remote list) may
        # differ between them; everything else is the same.
        strip = lambda loops: [{k: v for k, v in l.items() if k != "buffers_outstanding"} for l in loops]  # noqa: E731
        self.assertEqual(strip(json.loads(out)["loops"]), strip(media))

    def test_no_media_loops_means_control_loop(self):
        j, ports = self.start(loops=0, sockets=2)
        self.assertEqual([p["loop"] for p in ports], [0, 0])
        self.echo(ports[0]["port"], b"x")
        st = j.cmd("media-echo", "stats")
        self.assertEqual(st["sockets"][0]["thread"], st["control_thread"])
        self.assertEqual(st["control_only_status"], 0)  # on the control loop, allowed

    def test_bus_handoff_to_control_loop_subscriber(self):
        j, ports = self.start(loops=2, sockets=2)
        # Nobody subscribes yet: nothing is handed over.
        self.echo(ports[1]["port"], b"before")
        j.cmd("media-echo", "tap", {"stream": "media-echo/1"})
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        for i in range(50):
            self.echo(ports[1]["port"], b"p%d" % i, sock=s)
        wait_until(lambda: j.cmd("media-echo", "stats")["tap_deliveries"] == 50, what="50 bus deliveries")
        st = j.cmd("media-echo", "stats")
        self.assertEqual(st["bus_thread"], st["control_thread"])  # subscribers run on the control loop
        m = j.api("GET", "/metrics", expect=200)
        self.assertEqual(metric(m, "junction_media_bus_handoffs_total", 'loop="2"'), 50)
        self.assertIn("junction_bus_payload_copies_total 0", m)
        # Every buffer went back to its media loop's pool.
        wait_until(lambda: metric(j.api("GET", "/metrics", expect=200), "junction_media_buffers_outstanding", 'loop="2"') == 0,
                   what="media loop buffers returned")

    def test_reload_under_load_loses_nothing(self):
        """Hot reloads while datagrams keep arriving on both loops: input that arrived during a
        swap was held and replayed (held > 0 on each loop, held == replayed), and every datagram
        was echoed exactly once. The sender runs from before the first reload until after the last
        reply, so input is always arriving while a swap is in progress; the reloads go on until the
        core's own counters show held input on both loops (or fail after MAX_RELOADS)."""
        MAX_RELOADS = 300
        j, ports = self.start(loops=2, sockets=4)
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            rx.setsockopt(socket.SOL_SOCKET, 33, 32 << 20)  # SO_RCVBUFFORCE (root)
        except OSError:
            rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
        rx.bind(("127.0.0.1", 0))
        self.addCleanup(rx.close)
        cond = threading.Condition()
        state = {"sent": 0, "got": 0}
        errors = []  # an exception in a helper thread fails the test from the main thread
        stop_sending = threading.Event()
        window = 1000  # datagrams in flight at most: the echoes pace the sender (no sleeps)

        def receive():
            # Until the main thread's end marker (sent to ourselves once the sender has stopped)
            # and every echo of what was sent.
            try:
                rx.settimeout(10)
                marker = False
                echo_ports = [p["port"] for p in ports]
                while not (marker and state["got"] == state["sent"]):
                    data, addr = rx.recvfrom(2048)
                    if addr == rx.getsockname():
                        marker = True
                        continue
                    self.assertIn(addr[1], echo_ports)
                    with cond:
                        state["got"] += 1
                        cond.notify_all()
            except Exception as e:  # noqa: BLE001 - reported by the main thread
                errors.append(("receiver", e))
                with cond:
                    cond.notify_all()

        def send():
            try:
                for i in itertools.count():
                    with cond:
                        ready = cond.wait_for(lambda: state["sent"] - state["got"] < window or stop_sending.is_set() or errors,
                                              timeout=10)
                        if not ready:
                            raise AssertionError(f"echoes stopped: {state}")
                        if stop_sending.is_set() or errors:
                            return
                        state["sent"] += 1
                    rx.sendto(b"%08d" % i, ("127.0.0.1", ports[i % 4]["port"]))
            except Exception as e:  # noqa: BLE001
                errors.append(("sender", e))

        def held_by_loop():
            m = j.api("GET", "/metrics", expect=200)
            return {loop: (metric(m, "junction_media_held_total", f'loop="{loop}"'),
                           metric(m, "junction_media_replayed_total", f'loop="{loop}"')) for loop in ("1", "2")}

        receiver, sender = threading.Thread(target=receive), threading.Thread(target=send)
        receiver.start()
        sender.start()
        with cond:  # input is flowing before the first reload
            self.assertTrue(cond.wait_for(lambda: state["got"] >= window or errors, timeout=30), state)
        reloads = 0
        try:
            while not errors:
                status, body = j.request("POST", "/api/v1/plugins/media-echo/reload")
                self.assertEqual(status, 200, body)
                reloads += 1
                self.assertEqual(body["generation"], reloads)
                held = held_by_loop()
                if reloads >= 4 and all(h > 0 for h, _ in held.values()):
                    break
                self.assertLess(reloads, MAX_RELOADS, f"no input held on both loops after {reloads} reloads under load: {held}")
        finally:
            with cond:
                stop_sending.set()
                cond.notify_all()
            sender.join(30)
            rx.sendto(b"end", rx.getsockname())  # after the sender's last datagram
            receiver.join(30)
        self.assertEqual(errors, [])
        self.assertFalse(sender.is_alive() or receiver.is_alive())
        total = state["sent"]
        self.assertEqual(state["got"], total)
        st = j.cmd("media-echo", "stats")
        self.assertEqual(sum(s["echoed"] for s in st["sockets"]), total)
        self.assertEqual(st["generation"], reloads)
        # Everything held during a swap was replayed (no swap is in progress any more).
        held = held_by_loop()
        for loop, (h, r) in held.items():
            self.assertGreater(h, 0, f"loop {loop}")
            self.assertEqual(h, r, f"loop {loop}")
        held_total = sum(h for h, _ in held.values())
        self.assertLessEqual(held_total, total)
        print(f"\nmedia loops: {total} datagrams echoed across {reloads} reloads, {held_total:.0f} held and replayed")

    def test_unload_closes_media_sockets(self):
        j, ports = self.start(loops=2, sockets=4)
        self.echo(ports[0]["port"], b"x")
        j.api("POST", "/api/v1/plugins/media-echo/unload", expect=200)
        wait_until(lambda: metric(j.api("GET", "/metrics", expect=200), "junction_media_sockets", 'loop="1"') == 0,
                   what="media sockets closed")
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        s.bind(("127.0.0.1", ports[0]["port"]))  # the port is free again

    def test_bad_conf(self):
        j = self.server(plugins={"media-echo": {}}, server={"media_loops": 1, "media_loop_cpus": ["x"]})
        j.start(expect_ready=False)
        rc = j.wait_exit()
        j.proc = None
        self.assertEqual(rc, 2, j.log())
        self.assertRegex(j.log(), r"junction\.toml:\d+: CPU numbers are integers")


if __name__ == "__main__":
    main()
