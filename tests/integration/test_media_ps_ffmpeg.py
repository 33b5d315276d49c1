"""sdk/media MPEG-PS against the real ffmpeg: H.264 (libx264) and H.265 (libx265) + G.711 streams
encoded by ffmpeg are muxed to PS and packetized to RTP by the sdk (tests/tools/media_ps_tool),
reordered and duplicated, received, demuxed, and compared byte for byte with ffmpeg's elementary
stream output; ffmpeg decodes the sdk's PS; and a PS file written by ffmpeg's own muxer (-f vob)
demuxes to the same H.264 bytes (an MPEG-1 system stream, -f mpeg, is refused cleanly)."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

BUILD = os.environ.get("JN_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
TOOL = os.path.join(BUILD, "tools", "media_ps_tool")
SECONDS = "3"


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def four_byte_start_codes(es: bytes) -> bytes:
    """Annex-B with every start code as 00 00 00 01 (the media frame convention): ffmpeg's
    h264_metadata/hevc_metadata write 3-byte start codes before the NAL units after the first."""
    return re.sub(rb"(?<!\x00)\x00\x00\x01", b"\x00\x00\x00\x01", es)


def framemd5(path, fmt):
    """The decoded pictures' MD5s (ffmpeg -f framemd5), without the header comments."""
    out = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", fmt, "-i", path, "-f", "framemd5", "-"],
                         check=True, capture_output=True).stdout.decode()
    return [l.split(",")[-1].strip() for l in out.splitlines() if l and not l.startswith("#")]


class MediaPsFfmpegTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="jn-media-ps-")
        d = cls.dir
        src = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", SECONDS]
        # An AUD before every access unit: the tool cuts ffmpeg's ES into frames there.
        ffmpeg(*src, "-c:v", "libx264", "-g", "25", "-bf", "0", "-x264-params", "repeat-headers=1",
               "-bsf:v", "h264_metadata=aud=insert", "-f", "h264", f"{d}/v.264")
        ffmpeg(*src, "-c:v", "libx265", "-x265-params", "keyint=25:bframes=0:repeat-headers=1:log-level=error",
               "-bsf:v", "hevc_metadata=aud=insert", "-f", "hevc", f"{d}/v.265")
        tone = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000", "-t", SECONDS]
        ffmpeg(*tone, "-c:a", "pcm_alaw", "-f", "alaw", f"{d}/a.alaw")
        ffmpeg(*tone, "-c:a", "pcm_mulaw", "-f", "mulaw", f"{d}/a.ulaw")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def tool(self, *args):
        out = subprocess.run([TOOL, *args], check=True, capture_output=True, text=True).stdout
        return json.loads(out)

    def roundtrip(self, vcodec, es_name, acodec, audio_name, fmt):
        d = self.dir
        r = self.tool("roundtrip", "--vcodec", vcodec, "--video", f"{d}/{es_name}", "--acodec", acodec,
                      "--audio", f"{d}/{audio_name}", "--shuffle", "--ps-out", f"{d}/{vcodec}.ps",
                      "--out-video", f"{d}/out.{vcodec}", "--out-audio", f"{d}/out.{acodec}")
        expected_frames = int(SECONDS) * 25
        self.assertEqual(r["frames_in_video"], expected_frames)
        self.assertEqual(r["video_frames"], expected_frames)
        self.assertEqual(r["keyframes"], int(SECONDS))  # one IDR/IRAP per 25 frames
        self.assertEqual(r["vcodec"], vcodec)
        self.assertEqual(r["acodec"], acodec)
        self.assertEqual(r["errors"], {})
        self.assertEqual(r["lost"], 0)
        self.assertGreater(r["reordered"], 0, "the packets really were reordered")
        self.assertGreater(r["sent"], r["packets"], "and some duplicated")
        self.assertEqual(r["discont"], 2, "only the first frame of each track is a discontinuity")
        src_es = open(f"{d}/{es_name}", "rb").read()
        out_es = open(f"{d}/out.{vcodec}", "rb").read()
        self.assertEqual(out_es, four_byte_start_codes(src_es))
        self.assertEqual(open(f"{d}/out.{acodec}", "rb").read(), open(f"{d}/{audio_name}", "rb").read())
        self.assertEqual(r["audio_frames"], len(open(f"{d}/{audio_name}", "rb").read()) // 160)
        # Same pictures when decoded, and ffmpeg reads the sdk's PS: codec and every frame.
        src_md5 = framemd5(f"{d}/{es_name}", fmt)
        self.assertEqual(len(src_md5), expected_frames)
        self.assertEqual(framemd5(f"{d}/out.{vcodec}", fmt), src_md5)
        probe = json.loads(subprocess.run(
            ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v", "-show_entries",
             "stream=codec_name,nb_read_frames", "-of", "json", f"{d}/{vcodec}.ps"],
            check=True, capture_output=True, text=True).stdout)
        self.assertEqual(probe["streams"][0]["codec_name"], {"h264": "h264", "h265": "hevc"}[vcodec])
        self.assertEqual(int(probe["streams"][0]["nb_read_frames"]), expected_frames)
        ps_md5 = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", f"{d}/{vcodec}.ps", "-map", "0:v",
                                 "-f", "framemd5", "-"], check=True, capture_output=True).stdout.decode()
        self.assertEqual([l.split(",")[-1].strip() for l in ps_md5.splitlines() if l and not l.startswith("#")], src_md5)

    def test_h264_pcma_ps_rtp_roundtrip_byte_exact(self):
        self.roundtrip("h264", "v.264", "pcma", "a.alaw", "h264")

    def test_h265_pcmu_ps_rtp_roundtrip_byte_exact(self):
        self.roundtrip("h265", "v.265", "pcmu", "a.ulaw", "hevc")

    def test_demux_ps_written_by_ffmpeg(self):
        d = self.dir
        # libavformat's MPEG-2 PS muxer (DVD VOB): packs of 2048 bytes, PES cut anywhere in the
        # AUs, no PSM, MPEG audio on 0xC0.
        ffmpeg("-f", "h264", "-i", f"{d}/v.264", "-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", SECONDS,
               "-c:v", "copy", "-c:a", "mp2", "-f", "vob", f"{d}/ff.vob")
        r = self.tool("demux", "--in", f"{d}/ff.vob", "--out-video", f"{d}/ff.264")
        self.assertEqual(r["vcodec"], "h264")
        self.assertEqual(r["video_frames"], int(SECONDS) * 25)
        self.assertEqual(r["keyframes"], int(SECONDS))
        self.assertEqual(r["audio_frames"], 0)
        self.assertEqual(r["errors"], {"unsupported stream type": 1}, "MPEG audio is refused once, with a reason")
        self.assertGreater(r["packs"], 10)
        src = open(f"{d}/v.264", "rb").read()
        self.assertEqual(open(f"{d}/ff.264", "rb").read(), four_byte_start_codes(src))
        # ffmpeg's elementary stream output from the same PS file: the same bytes.
        ffmpeg("-i", f"{d}/ff.vob", "-map", "0:v", "-c:v", "copy", "-f", "h264", f"{d}/ff_ffmpeg.264")
        self.assertEqual(four_byte_start_codes(open(f"{d}/ff_ffmpeg.264", "rb").read()), four_byte_start_codes(src))

    def test_mpeg1_system_stream_refused(self):
        d = self.dir
        ffmpeg("-f", "h264", "-i", f"{d}/v.264", "-c:v", "copy", "-f", "mpeg", f"{d}/ff.mpg")
        r = self.tool("demux", "--in", f"{d}/ff.mpg")
        self.assertEqual(r["video_frames"], 0)
        self.assertEqual(list(r["errors"].keys()), ["MPEG-1 pack header (only MPEG-2 program streams are accepted)"])
        self.assertEqual(r["packs"], 0)


if __name__ == "__main__":
    unittest.main()
