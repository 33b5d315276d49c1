"""gb28181 registration (注册, 注销) with the device simulator: UDP and TCP, 401 then 200 with
the GB Date, wrong password / unknown device / another platform's ID 403, Expires 0, 423 with
Min-Expires, a reboot with a new Call-ID and a lower CSeq, a NAT address change, a TCP drop that
makes the device offline; online/offline core events. Each refusal leaves a registered device
undisturbed."""
import re
import socket

from gb_env import DEV1, DEV2, DEV3, DOMAIN, PASSWORD, PLATFORM, GbTest
from gb_device_sim import DigestClient, parse_message
from junction_test import main


class RegisterTest(GbTest):
    events_topic = "gb/"
    conf_over = {"min_expires_s": 60}

    def test_udp_register_401_then_200_with_gb_date_and_online_event(self):
        self.provision(DEV1, name="gate")
        d = self.device(DEV1)
        self.assertEqual(self.sim.run(d.register()), 200)
        ev = self.events.next("gb/device/online", device=DEV1)
        self.assertEqual(ev["transport"], "UDP")
        self.assertEqual(ev["name"], "gate")
        self.assertEqual(ev["address"], f"127.0.0.1:{d.local_port}")
        self.assertRegex(d.date, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}$")
        s = self.show(DEV1)
        self.assertTrue(s["online"])
        self.assertEqual(s["transport"], "UDP")
        self.assertEqual(s["registrations"], 1)
        self.j.wait_for_log(rf"REGISTER {DEV1} from 127\.0\.0\.1:{d.local_port} over UDP -> 200 \(new, expires 3600\)")
        self.assertEqual(self.metric("gb_register_requests_total"), 2)  # the challenged one, then the signed one
        self.assertEqual(self.metric("gb_devices_registered"), 1)

    def test_tcp_register_and_drop_goes_offline(self):
        self.provision(DEV1)
        d = self.device(DEV1, transport="tcp")
        self.assertEqual(self.sim.run(d.register()), 200)
        self.assertEqual(self.events.next("gb/device/online", device=DEV1)["transport"], "TCP")
        self.assertEqual(self.show(DEV1)["transport"], "TCP")
        self.sim.call(d.close)  # the device's TCP connection goes away
        ev = self.events.next("gb/device/offline", device=DEV1)
        self.assertEqual(ev["reason"], "connection closed")
        self.assertFalse(self.show(DEV1)["online"])
        self.assertEqual(self.show(DEV1)["offline_reason"], "connection closed")

    def test_both_request_uri_forms(self):
        self.provision(DEV1)
        self.provision(DEV2)
        a = self.device(DEV1, register_uri="addr")
        b = self.device(DEV2, register_uri="domain")
        self.assertEqual(self.sim.run(a.register()), 200)
        self.assertEqual(self.sim.run(b.register()), 200)
        self.assertEqual(self.stats()["registered"], 2)

    def test_refusals_do_not_disturb_a_registered_device(self):
        good = self.registered_device(DEV1)
        self.events.next("gb/device/online", device=DEV1)
        # wrong password
        self.provision(DEV2)
        bad = self.device(DEV2, password="not-it")
        self.assertEqual(self.sim.run(bad.register()), 403)
        self.j.wait_for_log(rf"REGISTER {DEV2} .* refused 403 \(wrong password\)")
        # unknown device: 403 at once, no challenge
        unknown = self.device(DEV3)
        self.assertEqual(self.sim.run(unknown.register()), 403)
        self.j.wait_for_log(rf"REGISTER {DEV3} .* refused 403 \(unknown device\)")
        # another platform's ID in the Request-URI
        other = self.device(DEV2)
        other.platform_id = "34020000002000000999"
        self.assertEqual(self.sim.run(other.register()), 403)
        self.j.wait_for_log(r"refused 403 \(other platform 34020000002000000999\)")
        self.assertEqual(self.metric("gb_auth_failures_total"), 3)
        self.assertFalse(self.show(DEV2)["online"])
        # the registered device noticed nothing: its keepalive is still answered
        self.assertEqual(self.sim.run(good.keepalive()), 200)
        self.assertTrue(self.show(DEV1)["online"])
        self.assertEqual(self.stats()["registered"], 1)

    def test_unregister_with_expires_0(self):
        d = self.registered_device(DEV1)
        self.events.next("gb/device/online", device=DEV1)
        self.assertEqual(self.sim.run(d.unregister()), 200)
        self.assertEqual(self.events.next("gb/device/offline", device=DEV1)["reason"], "unregistered")
        self.assertFalse(self.show(DEV1)["online"])
        # a keepalive from it now: 403 (so it registers again)
        self.assertEqual(self.sim.run(d.keepalive()), 403)
        self.j.wait_for_log(rf"MESSAGE from {DEV1} .* refused 403 \(device not registered\)")

    def test_423_min_expires_then_registers_with_it(self):
        self.provision(DEV1)
        d = self.device(DEV1, expires=30)
        self.assertEqual(self.sim.run(d.register()), 200)  # the simulator retries with Min-Expires
        self.j.wait_for_log(rf"REGISTER {DEV1} .* refused 423 \(below 60 s\)")
        self.j.wait_for_log(rf"REGISTER {DEV1} .* -> 200 \(new, expires 60\)")
        self.assertLessEqual(self.show(DEV1)["expires_in_s"], 60)

    def test_reboot_new_call_id_lower_cseq_is_a_new_registration(self):
        d = self.registered_device(DEV1)
        self.events.next("gb/device/online", device=DEV1)
        self.assertEqual(self.sim.run(d.reboot()), 200)
        self.j.wait_for_log(rf"REGISTER {DEV1} .* -> 200 \(new registration: rebooted")
        s = self.show(DEV1)
        self.assertTrue(s["online"])
        self.assertEqual(s["registrations"], 2)
        self.assertEqual(self.metric("gb_registrations_total"), 2)

    def test_nat_address_change_is_followed(self):
        d = self.registered_device(DEV1)
        old = d.local_port
        new = self.sim.run(d.nat_rebind())
        self.assertNotEqual(old, new)
        self.assertEqual(self.sim.run(d.keepalive()), 200)
        self.j.wait_for_log(rf"device {DEV1} address changed 127\.0\.0\.1:{old} -> 127\.0\.0\.1:{new}")
        self.assertEqual(self.show(DEV1)["address"], f"127.0.0.1:{new}")

    def test_digest_username_admin_when_provisioned(self):
        self.provision(DEV1, username="admin")
        d = self.device(DEV1, username="admin")
        self.assertEqual(self.sim.run(d.register()), 200)
        # the same device signing with its ID is refused: the username is part of the identity
        self.provision(DEV2, username="admin")
        e = self.device(DEV2)
        self.assertEqual(self.sim.run(e.register()), 403)
        self.j.wait_for_log(rf"REGISTER {DEV2} .* refused 403 \(username is not the device's\)")

    def test_date_switched_off_per_device(self):
        self.provision(DEV1, date="off")
        d = self.device(DEV1)
        self.assertEqual(self.sim.run(d.register()), 200)
        self.assertIsNone(d.date)

    def test_platform_password_for_devices_without_their_own(self):
        self.j.stop()
        self.conf["password"] = "platform-pw"
        self.j.write_plugin_conf("gb28181", self.conf)
        self.j.start()
        self.provision(DEV1, password=None)
        d = self.device(DEV1, password="platform-pw")
        self.assertEqual(self.sim.run(d.register()), 200)


class AutoAdmitTest(GbTest):
    conf_over = {"auto_admit": True, "password": "platform-pw"}

    def test_unknown_device_admitted_with_the_platform_password(self):
        d = self.device(DEV3, password="wrong")
        self.assertEqual(self.sim.run(d.register()), 403)
        self.cmd("show", {"id": DEV3}, expect=404)  # not admitted on a failed digest
        d = self.device(DEV3, password="platform-pw")
        self.assertEqual(self.sim.run(d.register()), 200)
        self.j.wait_for_log(rf"device {DEV3} admitted \(auto_admit\)")
        s = self.show(DEV3)
        self.assertTrue(s["auto_admitted"])
        self.assertTrue(s["online"])


class MalformedTest(GbTest):
    def test_register_with_a_bad_to_user_is_400(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        lp = s.getsockname()[1]
        msg = (f"REGISTER sip:{PLATFORM}@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{lp};branch=z9hG4bKbad1;rport\r\n"
               f"From: <sip:alice@{DOMAIN}>;tag=1\r\nTo: <sip:alice@{DOMAIN}>\r\nCall-ID: bad1\r\nCSeq: 1 REGISTER\r\n"
               f"Contact: <sip:alice@127.0.0.1:{lp}>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
        s.sendto(msg.encode(), ("127.0.0.1", self.port))
        data, _ = s.recvfrom(65535)
        self.assertTrue(data.startswith(b"SIP/2.0 400"), data)
        self.assertIn(b"To user is not a GB device ID", data)
        s.close()

    def test_udp_retransmitted_register_is_answered_again_not_a_new_registration(self):
        # stateless_register (the default): no transaction answers the retransmission, the
        # registrar runs again; the digest must accept the same nc for the same request and the
        # registrar must not take the equal CSeq for a reboot.
        self.provision(DEV1)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        lp = s.getsockname()[1]
        ruri = f"sip:{PLATFORM}@{DOMAIN}"

        def register(cseq, branch, auth=None):
            return (f"REGISTER {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{lp};branch=z9hG4bK{branch};rport\r\n"
                    f"From: <sip:{DEV1}@{DOMAIN}>;tag=rt1\r\nTo: <sip:{DEV1}@{DOMAIN}>\r\nCall-ID: retrans-1\r\n"
                    f"CSeq: {cseq} REGISTER\r\nContact: <sip:{DEV1}@127.0.0.1:{lp}>\r\nExpires: 3600\r\n"
                    + (f"Authorization: {auth}\r\n" if auth else "") + "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()

        s.sendto(register(1, "rt1"), ("127.0.0.1", self.port))
        first = parse_message(s.recvfrom(65535)[0])
        self.assertEqual(first.status, 401)
        dc = DigestClient(DEV1, PASSWORD)
        dc.set_challenge(first.get("www-authenticate"))
        req = register(2, "rt2", dc.authorization("REGISTER", ruri))
        answers = []
        for _ in range(2):  # the request, then its retransmission (same bytes)
            s.sendto(req, ("127.0.0.1", self.port))
            answers.append(parse_message(s.recvfrom(65535)[0]))
        s.close()
        self.assertEqual([a.status for a in answers], [200, 200])
        self.assertEqual(answers[0].get("to"), answers[1].get("to"))  # the same To tag
        self.assertEqual(self.show(DEV1)["registrations"], 1)
        self.assertEqual(self.metric("gb_registrations_total"), 1)


if __name__ == "__main__":
    main()
