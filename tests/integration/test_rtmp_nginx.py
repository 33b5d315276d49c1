#!/usr/bin/env python3
"""sdk/rtmp's Publisher against a real RTMP server (issue 16): nginx with libnginx-mod-rtmp, started
by the test as a normal process on loopback (generated conf, free port, temp dirs). The tool
build/tools/rtmp_push_tool pushes an ffmpeg-made H.264 + G.711 clip through the Publisher; ffprobe
reads the stream back, both from nginx's recording (`record all`) and live over rtmp:// while it is
published: H.264 and the audio codec present, every frame that was sent, timestamps from 0 and
strictly increasing, durations as sent, ffmpeg decoding it without an error. Also: a second
publisher of the same name refused with the server's reason, an unknown application, nginx's
Acknowledgements of the window the publisher announces, and the same tags written as a local
FLV file."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from junction_test import BUILD, free_port, main, wait_until  # noqa: E402

TOOL = os.path.join(BUILD, "tools", "rtmp_push_tool")
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
FFMPEG = shutil.which("ffmpeg")
FFPROBE = shutil.which("ffprobe")
FRAMES = 100   # video frames in the clip (25 fps: 4 s)
FPS = 25
AUDIO_FRAMES = 200  # 4 s of 8 kHz G.711 in 160-sample (20 ms) frames

CONF = """
load_module {module};
daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 64; }}
rtmp {{
  server {{
    listen 127.0.0.1:{port};
    chunk_size 4096;
    application live {{
      live on;
      # Players are disconnected when the publisher leaves, so a live ffprobe reaches its end.
      idle_streams off;
      record all;
      record_path {dir}/rec;
      record_unique off;
    }}
  }}
}}
"""


def connectable(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@unittest.skipUnless(NGINX and os.path.exists(MODULE) and FFMPEG and FFPROBE,
                     "nginx + libnginx-mod-rtmp + ffmpeg needed (scripts/setup.sh installs them)")
class RtmpNginx(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="jn-rtmp-")
        os.makedirs(os.path.join(cls.dir, "rec"))
        cls.h264 = os.path.join(cls.dir, "clip.h264")
        cls.alaw = os.path.join(cls.dir, "clip.alaw")
        cls.ulaw = os.path.join(cls.dir, "clip.ulaw")
        # No B-frames (pts = dts, as the SIP capture's RTP gives them); AUDs mark access units.
        subprocess.run([FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate={FPS}",
                        "-frames:v", str(FRAMES), "-c:v", "libx264", "-profile:v", "baseline", "-g", "25",
                        "-x264-params", "aud=1", "-f", "h264", cls.h264], check=True)
        tone = [FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000", "-t", "4"]
        subprocess.run(tone + ["-f", "alaw", "-ar", "8000", "-ac", "1", cls.alaw], check=True)
        subprocess.run(tone + ["-f", "mulaw", "-ar", "8000", "-ac", "1", cls.ulaw], check=True)
        cls.port = free_port()
        conf = os.path.join(cls.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(CONF.format(module=MODULE, dir=cls.dir, port=cls.port))
        cls.nginx = subprocess.Popen([NGINX, "-p", cls.dir, "-c", conf, "-e", os.path.join(cls.dir, "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_until(lambda: connectable(cls.port) or cls.nginx.poll() is not None, timeout=15, what="nginx listening")
        except AssertionError:
            cls.tearDownClass()
            raise
        if cls.nginx.poll() is not None:
            err = cls.nginx.stderr.read().decode(errors="replace")
            cls.tearDownClass()
            raise AssertionError(f"nginx exited: {err}")

    @classmethod
    def tearDownClass(cls):
        if cls.nginx.poll() is None:
            cls.nginx.send_signal(signal.SIGTERM)
            try:
                cls.nginx.wait(timeout=15)
            except subprocess.TimeoutExpired:
                cls.nginx.kill()
                cls.nginx.wait()
        cls.nginx.stderr.close()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def url(self, stream, app="live"):
        return f"rtmp://127.0.0.1:{self.port}/{app}/{stream}"

    def push(self, stream, *extra, app="live", audio=True):
        args = [TOOL, "--url", self.url(stream, app), "--h264", self.h264, "--fps", str(FPS), *extra]
        if audio and "--mulaw" not in extra:
            args += ["--alaw", self.alaw]
        p = subprocess.run(args, capture_output=True, text=True, timeout=120)
        self.assertTrue(p.stdout.strip(), f"no stats from the tool: {p.stderr}")
        return p.returncode, json.loads(p.stdout.strip().splitlines()[-1]), p.stderr

    def nginx_log(self):
        with open(os.path.join(self.dir, "error.log"), errors="replace") as f:
            return f.read()

    def probe(self, source):
        p = subprocess.run([FFPROBE, "-v", "error", "-show_streams", "-show_packets", "-of", "json", source],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def check_stream(self, info, audio_codec="pcm_alaw", video=FRAMES, audio=AUDIO_FRAMES):
        """Codecs, packet counts, timestamps from 0 and strictly increasing, last timestamps."""
        codecs = {s["index"]: s["codec_name"] for s in info["streams"]}
        self.assertIn("h264", codecs.values())
        self.assertIn(audio_codec, codecs.values())
        by_codec = {}
        for pkt in info["packets"]:
            by_codec.setdefault(codecs[pkt["stream_index"]], []).append(float(pkt["pts_time"]))
        self.assertEqual(len(by_codec["h264"]), video)
        self.assertEqual(len(by_codec[audio_codec]), audio)
        for name, pts in by_codec.items():
            self.assertAlmostEqual(pts[0], 0.0, delta=0.001, msg=name)
            self.assertTrue(all(b > a for a, b in zip(pts, pts[1:])), f"{name} timestamps not increasing")
        # Durations as sent (frame times from the frame rate / 20 ms per audio frame), within 1 ms.
        self.assertAlmostEqual(by_codec["h264"][-1], (video - 1) / FPS, delta=0.0015)
        self.assertAlmostEqual(by_codec[audio_codec][-1], (audio - 1) * 0.02, delta=0.0015)

    def decodes(self, source):
        p = subprocess.run([FFMPEG, "-v", "error", "-i", source, "-f", "null", "-"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr.strip(), "", "ffmpeg reported decode errors")

    def recording(self, stream):
        path = os.path.join(self.dir, "rec", stream + ".flv")
        # The tool returns once nginx closed the connection, after deleteStream closed the file.
        self.assertTrue(os.path.exists(path), f"nginx recorded nothing; log:\n{self.nginx_log()[-3000:]}")
        return path

    def test_h264_pcma_recorded_by_nginx_and_read_back(self):
        rc, stats, err = self.push("cam1")
        self.assertEqual(rc, 0, err)
        self.assertEqual(stats["status"], "closed")
        self.assertEqual(stats["video_frames"], FRAMES)
        self.assertEqual(stats["audio_frames"], AUDIO_FRAMES)
        self.assertEqual(stats["video_dropped"] + stats["audio_dropped"], 0)
        self.assertEqual(stats["sequence_headers"], 1)
        self.assertIn("publish: name='cam1'", self.nginx_log())
        rec = self.recording("cam1")
        self.check_stream(self.probe(rec))
        self.decodes(rec)

    def test_h264_pcmu(self):
        rc, stats, err = self.push("cam2", "--mulaw", self.ulaw)
        self.assertEqual(rc, 0, err)
        self.check_stream(self.probe(self.recording("cam2")), audio_codec="pcm_mulaw")

    def test_live_play_with_ffprobe_over_rtmp(self):
        # The publisher holds the stream (published, nothing pushed) until ffprobe plays it.
        with subprocess.Popen([TOOL, "--url", self.url("live1"), "--h264", self.h264, "--alaw", self.alaw, "--hold"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as tool:
            try:
                for line in tool.stderr:
                    if line.startswith("holding"):
                        break
                    self.assertFalse(line.startswith("status failed"), line)
                with subprocess.Popen([FFPROBE, "-v", "error", "-show_streams", "-show_packets", "-of", "json",
                                       self.url("live1")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True) as probe:
                    try:
                        wait_until(lambda: "play: name='live1'" in self.nginx_log() or probe.poll() is not None,
                                   timeout=30, what="ffprobe playing")
                        tool.stdin.close()  # push now
                        out, perr = probe.communicate(timeout=60)
                    finally:
                        if probe.poll() is None:
                            probe.kill()
                self.assertEqual(probe.returncode, 0, perr)
                stats = json.loads(tool.stdout.read().strip().splitlines()[-1])
                self.assertEqual(tool.wait(timeout=60), 0)
                self.assertEqual(stats["video_frames"], FRAMES)
                self.check_stream(json.loads(out))
            finally:
                if tool.poll() is None:
                    tool.kill()

    def test_second_publisher_of_a_name_is_refused_with_the_servers_reason(self):
        with subprocess.Popen([TOOL, "--url", self.url("dup"), "--h264", self.h264, "--hold"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as holder:
            try:
                for line in holder.stderr:
                    if line.startswith("holding"):
                        break
                rc, stats, _ = self.push("dup")
                self.assertEqual(rc, 1)
                self.assertEqual(stats["status"], "failed")
                self.assertIn("NetStream.Publish.BadName", stats["reason"])
                holder.stdin.close()
                self.assertEqual(holder.wait(timeout=60), 0)  # the first one was not disturbed
            finally:
                if holder.poll() is None:
                    holder.kill()

    def test_unknown_application_ends_before_publishing(self):
        rc, stats, _ = self.push("x", app="nosuchapp")
        self.assertEqual(rc, 1)
        self.assertEqual(stats["status"], "closed")
        self.assertIn("before publishing", stats["reason"])

    def test_nginx_acknowledges_the_announced_window(self):
        # max queue 200000 -> window 50000: nginx acknowledges every 50000 bytes it reads; the
        # tool waits (--drain) until less than one window is unacknowledged.
        rc, stats, err = self.push("acked", "--max-queue", "200000", "--drain")
        self.assertEqual(rc, 0, err)
        self.assertEqual(stats["window"], 50000)
        self.assertGreater(stats["bytes_acknowledged"], 0)
        self.assertLess(stats["unacknowledged"], 50000)
        self.assertGreaterEqual(stats["bytes_acknowledged"], stats["bytes_sent"] - 2 * 1536 - 1 - 50000)
        self.assertEqual(stats["video_dropped"] + stats["audio_dropped"], 0)

    def test_same_tags_as_a_local_flv_file(self):
        out = os.path.join(self.dir, "local.flv")
        p = subprocess.run([TOOL, "--url", "none", "--h264", self.h264, "--alaw", self.alaw, "--flv", out],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.check_stream(self.probe(out))
        self.decodes(out)


if __name__ == "__main__":
    main()
