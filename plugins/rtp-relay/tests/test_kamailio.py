"""Debian's Kamailio, unchanged, drives rtp-relay through its rtpengine module: a sipp caller
calls a sipp callee through Kamailio; rtpengine_offer/answer rewrite the SDP to Junction's ports;
Kamailio's $rtpstat (an ng query) reads the call's RTP totals;
the caller plays RTP (play_pcap_audio), the callee echoes it (-rtp_echo), so every packet crosses
the relay twice; Kamailio's rtpengine_delete on BYE tears the session down."""
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from junction_test import JunctionTest, free_port, main  # noqa: E402

KAMAILIO = shutil.which("kamailio") or "/usr/sbin/kamailio"
SIPP = shutil.which("sipp") or "/usr/bin/sipp"
MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules"
PACKETS = 100

KAMAILIO_CFG = """#!KAMAILIO
debug=2
log_stderror=yes
fork=yes
children=1
auto_aliases=no
listen=udp:127.0.0.1:{sip_port}
mpath="{modules}/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "rtpengine.so"
modparam("rtpengine", "rtpengine_sock", "udp:127.0.0.1:{ng_port}")

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        loose_route();
        if (is_method("BYE")) {{ xlog("L_ERR", "rtpstat before delete: $rtpstat\n"); rtpengine_delete(); }}
        route(RELAY);
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    if (is_method("INVITE")) {{
        record_route();
        if (has_body("application/sdp")) {{ rtpengine_offer(); }}
        t_on_reply("REPLY");
    }}
    route(RELAY);
}}
route[RELAY] {{ if (!t_relay()) {{ sl_reply_error(); }} exit; }}
onreply_route[REPLY] {{ if (has_body("application/sdp")) {{ rtpengine_answer(); }} }}
"""

CALLER_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="caller playing RTP through Kamailio">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: [service] <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8
a=rtpmap:8 PCMA/8000
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: [service] <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
[routes]
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0
]]></send>
  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>
  <pause milliseconds="{pause_ms}"/>
  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: [service] <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
[routes]
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0
]]></send>
  <recv response="200" crlf="true"/>
</scenario>
"""


def write_pcap(path, packets, src_port=6000, dst_port=7000):
    """An Ethernet pcap of RTP PCMA packets, 20 ms apart (sipp replays its UDP payloads)."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i in range(packets):
            rtp = struct.pack("!BBHII", 0x80, 8, i + 1, 160 * i, 0x5EED) + bytes([0xD5]) * 160
            udp = struct.pack("!HHHH", src_port, dst_port, 8 + len(rtp), 0) + rtp
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                             socket.inet_aton("127.0.0.1"), socket.inet_aton("127.0.0.1")) + udp
            frame = b"\x00" * 12 + b"\x08\x00" + ip
            ts = 1000 + i * 0.02
            f.write(struct.pack("<IIII", int(ts), int(round((ts % 1) * 1e6)), len(frame), len(frame)) + frame)


@unittest.skipUnless(os.path.exists(KAMAILIO) and os.path.exists(SIPP) and os.path.exists(MODULES + "/rtpengine.so"),
                     "needs Debian's kamailio and sip-tester")
class KamailioTest(JunctionTest):
    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="jn-kam-")
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)
        super().tearDown()

    def spawn(self, args, name):
        log = open(os.path.join(self.tmp, name + ".log"), "w")
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.tmp)
        log.close()  # the child has its own descriptor
        self.procs.append(p)
        return p

    def log_of(self, name):
        with open(os.path.join(self.tmp, name + ".log"), errors="replace") as f:
            return f.read()

    def test_kamailio_rtpengine_module_drives_the_relay(self):
        ng_port = free_port(socket.SOCK_DGRAM)
        lo = 20000 + (ng_port % 20) * 100  # this file's band (see test_ng.relay_ports)
        j = self.server(plugins={"rtp-relay": {"ng_listen": f"127.0.0.1:{ng_port}", "port_range": "media"}},
                        server={"media_loops": 1})
        j.write_core(dict(j.core, ports={"media": {"min": lo, "max": lo + 99}}))
        j.start()
        sip_port, caller_port, callee_port = (free_port(socket.SOCK_DGRAM) for _ in range(3))
        # sipp's media ports: 32000-32599, clear of the harness's free_port band (24000-31999), the
        # relay tests' bands (10000-23999) and the kernel's ephemeral range (32768+).
        caller_mp, callee_mp = 32000 + (ng_port % 30) * 20, 32010 + (ng_port % 30) * 20
        cfg = os.path.join(self.tmp, "kamailio.cfg")
        with open(cfg, "w") as f:
            f.write(KAMAILIO_CFG.format(sip_port=sip_port, ng_port=ng_port, modules=MODULES))
        check = subprocess.run([KAMAILIO, "-c", "-f", cfg], capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stderr)
        self.spawn([KAMAILIO, "-f", cfg, "-DD", "-E", "-m", "32", "-M", "8", "-Y", self.tmp, "-P", os.path.join(self.tmp, "k.pid")], "kamailio")
        # Kamailio's rtpengine module pings the relay when its workers start: that is the sign.
        j.wait_for_log(r"ng ping from 127\.0\.0\.1", timeout=30)
        pcap = os.path.join(self.tmp, "rtp.pcap")
        write_pcap(pcap, PACKETS)
        with open(os.path.join(self.tmp, "caller.xml"), "w") as f:
            f.write(CALLER_XML.format(pcap=pcap, pause_ms=PACKETS * 20 + 1000))
        callee = self.spawn([SIPP, "-sn", "uas", "-i", "127.0.0.1", "-p", str(callee_port), "-mi", "127.0.0.1",
                             "-mp", str(callee_mp), "-rtp_echo", "-m", "1", "-nostdin", "-timeout", "60s"], "callee")
        caller = self.spawn([SIPP, "-sf", os.path.join(self.tmp, "caller.xml"), "-i", "127.0.0.1", "-p", str(caller_port),
                             "-mi", "127.0.0.1", "-mp", str(caller_mp), "-rsa", f"127.0.0.1:{sip_port}", "-m", "1",
                             "-nostdin", "-timeout", "60s", "-s", "callee", f"127.0.0.1:{callee_port}"], "caller")
        # The offer from Kamailio created the session; its rewritten SDP sent the callee to us.
        line = j.wait_for_log(r"rtp-relay: call '.*' deleted", timeout=60)
        self.assertEqual(caller.wait(60), 0, self.log_of("caller"))
        self.assertEqual(callee.wait(60), 0, self.log_of("callee"))
        # "call 'X' deleted: a packets N forwarded N; b packets M forwarded M"
        nums = [int(x) for x in line.replace(";", " ").split() if x.isdigit()]
        a_packets, a_fwd, b_packets, b_fwd = nums[-4:]
        self.assertEqual(a_packets, PACKETS, line)  # everything the caller played reached us
        self.assertEqual(a_fwd, PACKETS, line)      # ... and went on to the callee
        self.assertEqual(b_packets, PACKETS, line)  # the callee echoed every one back through us
        self.assertEqual(b_fwd, PACKETS, line)
        self.assertIn("by ng delete", line)
        # Kamailio's delete left nothing behind.
        self.assertEqual(j.cmd("rtp-relay", "stats")["sessions"], 0)
        self.assertEqual(j.cmd("rtp-relay", "ng", {"command": "list"})["calls"], [])
        # Kamailio's $rtpstat (an ng query before the delete) reads our totals: both directions.
        stat = [l for l in self.log_of("kamailio").splitlines() if "rtpstat before delete" in l]
        self.assertEqual(len(stat), 1, self.log_of("kamailio")[-3000:])
        self.assertIn(f"RTP: {2 * PACKETS * (12 + 160)} bytes, {2 * PACKETS} packets, 0 errors", stat[0])
        offers = [l for l in j.log().splitlines() if "ng offer" in l]
        self.assertTrue(offers, j.log())


if __name__ == "__main__":
    main()
