"""gb28181 GOP cache (media.gop_cache): a late joiner that asks for a catch-up (gb-consumer
subscribe {"catch_up": true}: its own catch-up stream named in media.keyframe_request) gets the
channel's last GOP at once, keyframe first, and then the live frames without a gap or a duplicate
(the simulator ignores IFrame, GOP 1 s: without the cache the joiner waits for the next keyframe)."""
import unittest

import re

from media_env import DEV1, GbMediaTest, expected_video_hashes, is_cyclic_slice, wait_until


class GopCacheTest(GbMediaTest):
    conf_over = {"media": dict(GbMediaTest.media_conf["media"], gop_cache=True)}

    def test_late_joiner_starts_from_the_cached_gop_then_live_seamlessly(self):
        dev = self.media_device(DEV1)
        ch = dev.channels[0]["DeviceID"]
        stream = f"gb28181/{DEV1}/{ch}/video"
        first = self.watch(DEV1, ch)
        self.viewer(ch, DEV1)
        self.wait_frames(first, 30)  # past the first GOP: the cache holds the current one
        r = self.consumer("subscribe", {"stream": stream, "catch_up": True})
        self.assertEqual(r["status"], 0)
        late = r["sub"]
        # Synchronous: the cached frames are there when the subscribe answers, keyframe first.
        self.assertGreater(r["catch_up_frames"], 0)
        f = self.frames(late)
        self.assertGreaterEqual(f["keyframes"], 1)
        self.assertEqual(f["video"], r["catch_up_frames"])
        self.j.wait_for_log(rf"gb-consumer: catch-up {r['catch_up_frames']} frames on {stream} \(sub {late}\)")
        # Then live: every frame once, in order, byte-identical to the encoded clip (no gap at the
        # switch from the cache to live, no duplicate).
        f = self.wait_frames(late, r["catch_up_frames"] + 40)
        self.assertVideoIdentical(f, "h264")
        self.assertEqual(f["discont"], 0)
        # The admin streams verb shows the cache and the catch-up served (README, streams).
        st = self.cmd("streams", {})
        live = [x for x in st["sessions"] if x.get("kind") == "Play" and x.get("channel") == ch]
        self.assertEqual(len(live), 1)
        m = live[0]["media"]
        self.assertEqual(m["catch_ups"], 1)
        self.assertGreaterEqual(m["gop_cache_frames"], 1)
        self.assertGreater(m["gop_cache_bytes"], 0)
        self.assertEqual(m["gop_overflows"], 0)
        self.assertEqual(m["marker_mode"], "trusted")  # the simulator marks each frame's last packet
        self.assertGreater(m["marker_frames"], 0)
        self.assertEqual(self.metric("gb_catch_ups_total"), 1)


class GopCacheCallTest(GbMediaTest):
    """A viewer joining through a call (gb:<dev>/<ch>) is answered with streams of its own that
    start from the cached GOP once its consumer joins (media.keyframe_request naming them)."""
    conf_over = {"media": dict(GbMediaTest.media_conf["media"], gop_cache=True)}
    own = r"call leg (\d+) views (\d+) on its own streams (\S+)/video\|audio"

    def test_a_late_call_viewer_starts_from_the_cached_keyframe_then_live(self):
        dev = self.media_device(DEV1)
        ch = dev.channels[0]["DeviceID"]
        first = self.watch(DEV1, ch)  # the live stream, to compare with
        self.viewer(ch, DEV1)
        self.j.wait_for_log(self.own)
        self.wait_frames(first, 30)  # past the first GOP, the simulator ignores IFrame
        mark = len(self.j.lines)
        self.viewer(ch, DEV1)
        base = re.search(self.own, self.j.wait_for_log(self.own, start=mark)).group(3)
        self.assertTrue(base.startswith(f"gb28181/{DEV1}/{ch}/viewer/call-"), base)
        before = self.frames(first)  # what the live stream had delivered when the viewer joined
        r = self.consumer("subscribe", {"stream": base + "/video", "catch_up": True})  # publishes the join request
        self.assertEqual(r["status"], 0)
        late = r["sub"]
        self.assertEqual(r["catch_up_frames"], 0)  # nothing on the side name: the burst is in line
        got = self.wait_frames(late, 40)
        live = self.frames(first)["hashes"]
        # Its first frame is a keyframe of the clip (keyint = fps: every 25th frame) ...
        clip = expected_video_hashes("h264")
        self.assertIn(got["hashes"][0], clip[::25])
        # ... the cached one: the live stream had delivered it before the join, so it did not wait
        # for the simulator's next natural keyframe ...
        self.assertIn(got["hashes"][0], before["hashes"])
        i = len(before["hashes"]) - 1 - before["hashes"][::-1].index(got["hashes"][0])  # its last delivery (the clip loops)
        # ... then every frame after it, byte-identical, in order, no gap, no duplicate.
        n = min(len(got["hashes"]), len(live) - i)
        self.assertGreaterEqual(n, 40)
        self.assertEqual(got["hashes"][:n], live[i:i + n])
        self.assertVideoIdentical(got, "h264")
        self.assertEqual(got["discont"], 0)
        m = [x for x in self.cmd("streams", {})["sessions"] if x.get("kind") == "Play" and x.get("channel") == ch][0]["media"]
        self.assertEqual(m["catch_ups"], 1)
        self.assertEqual(self.metric("gb_catch_ups_total"), 1)


class GopCacheOffTest(GbMediaTest):
    def test_without_the_cache_a_catch_up_gets_nothing_and_waits_for_a_keyframe(self):
        dev = self.media_device(DEV1)
        ch = dev.channels[0]["DeviceID"]
        stream = f"gb28181/{DEV1}/{ch}/video"
        first = self.watch(DEV1, ch)
        self.viewer(ch, DEV1)
        self.wait_frames(first, 30)
        r = self.consumer("subscribe", {"stream": stream, "catch_up": True})
        self.assertEqual(r["catch_up_frames"], 0)
        self.j.wait_for_log("catch-up asked, but media.gop_cache is off")
        f = wait_until(lambda: (lambda x: x if x["keyframes"] >= 1 else None)(self.frames(r["sub"])), 10)
        self.assertVideoIdentical(f, "h264")


if __name__ == "__main__":
    unittest.main()
