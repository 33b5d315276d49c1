"""gb28181 hot reload with 1 000 registered devices from the simulator (half over UDP, half over
TCP): every registration, TCP connection, subscription and pending query carries over, and the
devices notice nothing (no connection closed, every keepalive answered 200, nothing registers
again, the subscription's NOTIFY is still in its dialog, the pending query still gets its reply)."""
import threading

from gb_env import NAME, PASSWORD, GbTest
from junction_test import main

N = 1000


class ReloadTest(GbTest):
    conf_over = {"log_each": False, "query_timeout_ms": 4000}
    core_limits = {"tcp_max_conns_per_ip": 0, "tcp_max_conns_per_listener": 0}

    def test_reload_with_1000_devices_keeps_registrations_connections_subscriptions(self):
        udp = [f"3402000000132{i:07d}" for i in range(1, N // 2 + 1)]
        tcp = [f"3402000000132{i:07d}" for i in range(N // 2 + 1, N + 1)]
        self.provision_many(udp + tcp)
        devs = self.sim.add_devices(N // 2, PASSWORD, start=1) + self.sim.add_devices(N // 2, PASSWORD, start=N // 2 + 1,
                                                                                    transport="tcp")
        self.assertEqual(sorted(d.id for d in devs), sorted(udp + tcp))
        result = self.sim.run(self.sim.register_all(devs, concurrency=100), timeout=300)
        self.assertEqual(sorted(set(result.values())), [200], {k: v for k, v in result.items() if v != 200})
        self.assertEqual(self.stats()["registered"], N)
        marks = {d.id: d.mark() for d in devs}

        # A catalog subscription of a TCP device and one of a UDP device, a query nobody answers
        # (pending across the reload).
        sub_devs = [devs[0], devs[-1]]
        for d in sub_devs:
            r = self.cmd("subscribe", {"id": d.id, "kind": "Catalog", "expires_s": 600})
            self.assertEqual(r["outcome"], "ok", r)
        quiet = devs[1]
        quiet.silent.add("DeviceInfo")
        pending = {}
        t = threading.Thread(target=lambda: pending.update(r=self.j.request(
            "POST", f"/api/v1/plugins/{NAME}/cmd/query", {"id": quiet.id, "type": "DeviceInfo"})))
        t.start()
        quiet.wait_message("DeviceInfo")
        self.assertEqual(self.stats()["pending_commands"], 1)

        r = self.j.api("POST", f"/api/v1/plugins/{NAME}/reload", expect=200)
        self.assertEqual(r["generation"], 1)
        self.j.wait_for_log(rf"gb28181: restored {N} registration\(s\)")
        self.assertEqual(self.stats()["registered"], N)

        # Every device: its keepalive is answered 200 (no 403: the registration is known).
        codes = self.sim.run(self._keepalive_all(devs), timeout=300)
        self.assertEqual(sorted(set(codes.values())), [200], {k: v for k, v in codes.items() if v != 200})
        # The pending query ends in the new instance, with its timeout, and the admin request
        # made to the old one gets it.
        t.join(30)
        status, body = pending["r"]
        self.assertEqual(status, 504, body)
        self.assertEqual((body["outcome"], body["cmd"], body["device"]), ("timeout", "DeviceInfo", quiet.id))
        # The subscriptions' NOTIFYs are still in their dialogs.
        for d in sub_devs:
            self.assertEqual(self.sim.run(d.notify_catalog([("OFF", d.channels[0]["DeviceID"])])), 200)
        # Nothing was noticed: no TCP connection closed, nobody registered again or was refused.
        for d in devs:
            self.assertEqual(d.find("tcp_closed", since=marks[d.id]), [], d.id)
            self.assertEqual(d.find("registered", since=marks[d.id]), [], d.id)
            self.assertEqual(d.find("register_failed", since=marks[d.id]), [], d.id)
        self.assertNotIn("offline (", self.j.log())
        # A TCP device is still reached over its connection by the new instance.
        q = self.cmd("query", {"id": tcp[-1], "type": "DeviceInfo"})
        self.assertEqual(q["outcome"], "ok", q)
        self.assertEqual(self.stats()["registered"], N)
        # The new instance knows which devices each carried-over connection holds: a drop now
        # takes exactly that device offline.
        self.sim.call(devs[-2].close)
        self.j.wait_for_log(rf"device {devs[-2].id} offline \(connection closed\)")
        self.assertEqual(self.stats()["registered"], N - 1)

    async def _keepalive_all(self, devs):
        import asyncio
        sem = asyncio.Semaphore(100)
        out = {}

        async def one(d):
            async with sem:
                out[d.id] = await d.keepalive()
        await asyncio.gather(*(one(d) for d in devs))
        return out


if __name__ == "__main__":
    main()
