#!/usr/bin/env python3
"""sdk/media RTP packetizers against ffmpeg (issue 12): real H.264 (libx264), H.265 (libx265) and
G.711 elementary streams, encoded by ffmpeg, go frames -> RTP -> frames through
build/tools/media_rtp_tool and come back byte for byte (NAL units identical; start codes
normalised to 4 bytes, the frame convention); and frames packetized by the sdk, sent as RTP over
loopback UDP to ffmpeg reading an SDP file, decode with no error message, every frame counted;
and the other way, RTP from ffmpeg's own muxer (an independent packetizer) is depacketized by the
sdk back into the elementary stream ffmpeg read."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from junction_test import BUILD, free_port, main, wait_until  # noqa: E402

TOOL = os.path.join(BUILD, "tools", "media_rtp_tool")
FFMPEG = shutil.which("ffmpeg")


def nals(data):
    """The NAL units of an Annex-B stream (start codes and trailing zero bytes removed)."""
    out = []
    starts = [m.end() for m in re.finditer(b"\x00\x00\x01", data)]
    for i, s in enumerate(starts):
        end = starts[i + 1] - 3 if i + 1 < len(starts) else len(data)
        out.append(data[s:end].rstrip(b"\x00") if i + 1 < len(starts) else data[s:end])
    return out


def udp_bound(port):
    """True when some socket is bound to UDP `port` (ffmpeg opened its RTP input)."""
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as f:
                for line in f.readlines()[1:]:
                    local = line.split()[1]
                    if int(local.rsplit(":", 1)[1], 16) == port:
                        return True
        except OSError:
            pass
    return False


@unittest.skipUnless(FFMPEG, "ffmpeg not installed (setup.sh installs it)")
class MediaRtpFfmpeg(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="jn-media-rtp-")
        src = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"]
        tone = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000", "-t", "3"]
        cls.es = {}
        jobs = {
            # B-frames on: decode order differs from presentation order, as real cameras' streams can.
            "h264": src + ["-frames:v", "100", "-c:v", "libx264", "-g", "25", "-f", "h264"],
            "h265": src + ["-frames:v", "60", "-c:v", "libx265", "-x265-params", "log-level=error:keyint=25",
                           "-f", "hevc"],
            # For the live decode: no B-frames, so ffmpeg's decoder holds no frame back at the end.
            "h264-live": src + ["-frames:v", "100", "-c:v", "libx264", "-bf", "0", "-g", "25", "-f", "h264"],
            "h265-live": src + ["-frames:v", "60", "-c:v", "libx265", "-x265-params",
                                "log-level=error:keyint=25:bframes=0", "-f", "hevc"],
            "pcma": tone + ["-c:a", "pcm_alaw", "-f", "alaw"],
            "pcmu": tone + ["-c:a", "pcm_mulaw", "-f", "mulaw"],
        }
        for name, args in jobs.items():
            path = os.path.join(cls.dir, name + ".es")
            subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-y"] + args + [path], check=True, timeout=60)
            cls.es[name] = path

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def roundtrip(self, codec, es, *flags):
        out = os.path.join(self.dir, f"{codec}.out")
        r = subprocess.run([TOOL, "roundtrip", codec, self.es[es], out, *flags], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.es[es], "rb") as f:
            original = f.read()
        with open(out, "rb") as f:
            back = f.read()
        return json.loads(r.stdout), original, back

    def check_video_exact(self, codec, es, *flags):
        stats, original, back = self.roundtrip(codec, es, *flags)
        self.assertGreater(stats["frames_in"], 50)
        self.assertEqual(stats["frames_out"], stats["frames_in"])
        self.assertEqual(stats["mismatched"], 0)
        self.assertGreater(stats["packets"], stats["frames_in"])  # keyframes were fragmented
        self.assertLessEqual(stats["max_packet"], 1200)
        self.assertEqual(stats["markers"], stats["frames_in"])
        self.assertEqual(stats["bad_markers"], 0)
        # Byte for byte: the same NAL units in the same order (the encoder repeats its parameter
        # sets in band before each keyframe, so none is injected), behind 4-byte start codes.
        self.assertEqual(nals(back), nals(original))
        self.assertEqual(back, b"".join(b"\x00\x00\x00\x01" + n for n in nals(original)))
        return stats

    def test_h264_roundtrip_byte_exact(self):
        self.check_video_exact("h264", "h264")

    def test_h265_roundtrip_byte_exact(self):
        self.check_video_exact("h265", "h265")

    def test_video_reordered_and_duplicated_packets_byte_exact(self):
        for codec in ("h264", "h265"):
            with self.subTest(codec=codec):
                stats = self.check_video_exact(codec, codec, "--reorder")
                self.assertGreater(stats["duplicates"], 0)

    def test_g711_roundtrip_byte_exact(self):
        for codec in ("pcma", "pcmu"):
            with self.subTest(codec=codec):
                stats, original, back = self.roundtrip(codec, codec, "--reorder")
                self.assertEqual(stats["frames_in"], 150)
                self.assertEqual(stats["frames_out"], 150)
                self.assertEqual(stats["markers"], 1)  # the talkspurt start only
                self.assertEqual(back, original)

    def test_loss_yields_only_whole_frames(self):
        for codec in ("h264", "h265", "pcma"):
            dropped = 0
            for seed in range(1, 21):  # 20 loss and reorder patterns each
                with self.subTest(codec=codec, seed=seed):
                    stats, _, _ = self.roundtrip(codec, codec, "--loss", "5", "--reorder", "--seed", str(seed))
                    self.assertGreater(stats["frames_out"], stats["frames_in"] // 2)
                    self.assertLessEqual(stats["frames_out"], stats["frames_in"] - stats["frames_dropped"])
                    self.assertEqual(stats["mismatched"], 0)  # every frame out equals its input
                    if stats["lost"]:
                        self.assertLess(stats["frames_out"], stats["frames_in"])
                    dropped += stats["frames_dropped"]
            if codec != "pcma":
                self.assertGreater(dropped, 0)  # damaged units were seen, and dropped

    def decode_live(self, codec, es, frames, kind):
        port = free_port() & ~1  # RTP on an even port, RTCP on the next
        while udp_bound(port) or udp_bound(port + 1):
            port = free_port() & ~1
        sdp = os.path.join(self.dir, f"{codec}.sdp")
        with open(sdp, "w") as f:
            f.write(subprocess.run([TOOL, "sdp", codec, self.es[es], str(port)], capture_output=True, text=True,
                                   check=True).stdout)
        ff = subprocess.Popen([FFMPEG, "-nostdin", "-v", "info", "-threads", "1", "-protocol_whitelist",
                               "file,udp,rtp", "-i", sdp, f"-frames:{kind}", str(frames), "-f", "framecrc", "-"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_until(lambda: udp_bound(port) or ff.poll() is not None, timeout=10, what="ffmpeg's RTP socket")
            self.assertIsNone(ff.poll(), "ffmpeg exited before reading")
            sent = subprocess.run([TOOL, "send", codec, self.es[es], str(port)], capture_output=True, text=True,
                                  timeout=30)
            self.assertEqual(sent.returncode, 0, sent.stderr)
            out, err = ff.communicate(timeout=20)
        finally:
            if ff.poll() is None:
                ff.kill()
                ff.communicate()
        self.assertEqual(ff.returncode, 0, err)
        decoded = [l for l in out.splitlines() if l and not l.startswith("#")]
        self.assertEqual(len(decoded), frames, err)
        problems = [l for l in err.splitlines() if re.search(r"error|conceal|corrupt|missing|invalid|non-existing",
                                                             l, re.I)]
        self.assertEqual(problems, [], err)
        return err

    def test_ffmpeg_decodes_sdk_h264(self):
        err = self.decode_live("h264", "h264-live", 100, "v")
        self.assertRegex(err, r"Stream #0:0: Video: h264")

    def test_ffmpeg_decodes_sdk_h265(self):
        err = self.decode_live("h265", "h265-live", 60, "v")
        self.assertRegex(err, r"Stream #0:0: Video: hevc")

    def test_ffmpeg_decodes_sdk_g711(self):
        for codec, name in (("pcma", "pcm_alaw"), ("pcmu", "pcm_mulaw")):
            with self.subTest(codec=codec):
                err = self.decode_live(codec, codec, 150, "a")
                self.assertRegex(err, rf"Stream #0:0: Audio: {name}, 8000 Hz")

    def receive_from_ffmpeg(self, codec, es, input_format=()):
        port = free_port()
        out = os.path.join(self.dir, f"{codec}.recv")
        tool = subprocess.Popen([TOOL, "recv", codec, str(port), out], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        try:
            self.assertIn("listening", tool.stdout.readline())  # bound: ffmpeg may send
            # send_bye: ffmpeg ends with an RTCP BYE (muxed on the RTP port), the tool's end of stream.
            subprocess.run([FFMPEG, "-nostdin", "-v", "error", *input_format, "-i", self.es[es], "-c", "copy", "-f",
                            "rtp", "-rtpflags", "send_bye", "-sdp_file", os.devnull, "-pkt_size", "1000",
                            f"rtp://127.0.0.1:{port}?rtcpport={port}"], check=True, timeout=30)
            rest, err = tool.communicate(timeout=20)
        finally:
            if tool.poll() is None:
                tool.kill()
                tool.communicate()
        self.assertEqual(tool.returncode, 0, err)
        stats = json.loads(rest.strip().splitlines()[-1])
        self.assertEqual(stats["refused"], 0, err)
        self.assertEqual(stats["lost"], 0)  # loopback: a loss here would be the test's, not the sdk's
        self.assertEqual(stats["dropped"], 0)
        with open(self.es[es], "rb") as f:
            original = f.read()
        with open(out, "rb") as f:
            back = f.read()
        return stats, original, back

    def test_sdk_depacketizes_ffmpeg_rtp(self):
        for codec, frames, keys in (("h264", 100, 4), ("h265", 60, 3)):
            with self.subTest(codec=codec):
                stats, original, back = self.receive_from_ffmpeg(codec, codec)
                self.assertEqual(stats["frames"], frames)
                self.assertEqual(stats["keyframes"], keys)  # one per GOP of 25
                self.assertEqual(nals(back), nals(original))
        with self.subTest(codec="pcma"):
            stats, original, back = self.receive_from_ffmpeg("pcma", "pcma", ("-f", "alaw", "-ar", "8000"))
            self.assertGreater(stats["frames"], 10)
            self.assertEqual(back, original)


if __name__ == "__main__":
    main()
