"""gb28181 GOP cache (media.gop_cache): a late joiner that asks for a catch-up (gb-consumer
subscribe {"catch_up": true}: its own catch-up stream named in media.keyframe_request) gets the
channel's last GOP at once, keyframe first, and then the live frames without a gap or a duplicate
(the simulator ignores IFrame, GOP 1 s: without the cache the joiner waits for the next keyframe)."""
import unittest

from media_env import DEV1, GbMediaTest, wait_until


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
