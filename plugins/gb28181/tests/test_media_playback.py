"""gb28181 playback and download (回放/下载, MANSRTSP over INFO): PAUSE stops the device's
sending, PLAY resumes with Scale, MediaStatus 121 ends the session (the platform BYEs); the
frames are the encoded ones; a download's file holds exactly the frames the device sent."""
import glob
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from media_env import DEV1, GbMediaTest, wait_until
from gb_media_sim import MediaAssets, PS_TOOL


class PlaybackTest(GbMediaTest):
    """Downloads land in the plugin's state directory (ABI 2.2: <server.state_dir>/plugins/gb28181/downloads)."""

    def download_dir(self):
        return os.path.join(self.j.dir, "var", "plugins", "gb28181", "downloads")

    def test_pause_play_scale_and_media_status_121(self):
        # MediaStatus with the device's ID in From (test_media_status_in_dialog.py: with
        # the dialog's channel URI, as RFC 3261 and the document's step 13 have it)
        self.pause_play_scale(("media_status_from_device",))

    def pause_play_scale(self, quirks):
        dev = self.media_device(DEV1, quirks=quirks)
        ch = dev.channels[0]["DeviceID"]
        # Subscribed before the device can start: a frame goes on the bus at its RTP marker, so
        # the first one can be out before the playback command's answer has been read. The first
        # playback of this server is number 1 (the name is checked against the answer's).
        video = f"gb28181/{DEV1}/{ch}/playback/1/video"
        sub = self.consumer("subscribe", {"stream": video})["sub"]
        r = self.cmd("playback", {"device": DEV1, "channel": ch, "start": 1796637600, "end": 1796637602})
        self.assertEqual(r["bus"]["video"], video)
        inv = dev.wait("invite", timeout=15)
        self.assertEqual(inv["s"], "Playback")
        self.assertRegex(inv["y"], r"^1\d{9}$", "playback: y= starts with 1")
        self.assertIsNotNone(inv["u"])
        dev.wait("media_frame", call_id=inv["call_id"], n=10)
        self.cmd("playback_control", {"id": r["id"], "action": "pause"})
        p = dev.wait("mansrtsp", method="PAUSE")
        with self.assertRaises(AssertionError):  # paused: 25 fps would send ~15 frames here
            dev.wait("media_frame", timeout=0.6, since=p["i"] + 1, call_id=inv["call_id"])
        self.cmd("playback_control", {"id": r["id"], "action": "play", "scale": 2.0})
        q = dev.wait("mansrtsp", method="PLAY")
        self.assertEqual(float(q["scale"]), 2.0)
        end = dev.wait("media_end", call_id=inv["call_id"], timeout=15)
        dev.wait("media_status", notify_type=121, status=200)
        self.j.wait_for_log(r"MediaStatus 121 from")
        a = MediaAssets.get("h264", 2)
        f = wait_until(lambda: (lambda x: x if x["video"] == len(a.video_frames) else None)(self.frames(sub)))
        self.assertVideoIdentical(f, "h264")
        self.assertEqual(end["video"], len(a.video_frames))
        dev.wait("bye_received", timeout=15)  # the platform ends the session after 121

    def test_download_file_frame_count(self):
        dev = self.media_device(DEV1, quirks=("media_status_from_device",))
        ch = dev.channels[0]["DeviceID"]
        r = self.cmd("download", {"device": DEV1, "channel": ch, "start": 1796637600,
                                  "end": 1796637602, "speed": 4})
        inv = dev.wait("invite", timeout=15)
        self.assertEqual(inv["s"], "Download")
        end = dev.wait("media_end", call_id=inv["call_id"], timeout=15)
        dev.wait("media_status", notify_type=121)
        path = wait_until(lambda: next((p for p in glob.glob(os.path.join(self.download_dir(), "*.ps"))), None))
        self.assertEqual(os.path.basename(path), f"{ch}-1796637600-1796637602.ps")
        wait_until(lambda: not self.cmd("streams")["sessions"])  # the session ended
        # The last appends are the worker pool's, after the session ended: read until they are in.
        demux = lambda: json.loads(subprocess.run([PS_TOOL, "demux", "--in", path], check=True, capture_output=True,
                                                  text=True).stdout)
        out = wait_until(lambda: (lambda o: o if o["video_frames"] >= end["video"] else None)(demux()))
        self.assertEqual(out["errors"], {})
        self.assertEqual(out["video_frames"], end["video"])
        self.assertEqual(out["video_frames"], len(MediaAssets.get("h264", 2).video_frames))


class DownloadDirTest(PlaybackTest):
    """play.download_dir still overrides the state directory."""

    def setUp(self):
        self.dl = tempfile.mkdtemp(prefix="jn-gb-dl-")
        self.media_conf = dict(self.media_conf, play=dict(self.media_conf["play"], download_dir=self.dl))
        super().setUp()

    def tearDown(self):
        super().tearDown()
        shutil.rmtree(self.dl, ignore_errors=True)

    def download_dir(self):
        return self.dl

    def test_download_file_frame_count(self):
        super().test_download_file_frame_count()
        self.assertFalse(os.path.exists(os.path.join(self.j.dir, "var", "plugins", "gb28181", "downloads")))

    def test_pause_play_scale_and_media_status_121(self):
        self.skipTest("covered by PlaybackTest")


if __name__ == "__main__":
    unittest.main()
