"""Shared fixture of the gb28181 media flow tests (test_media_*.py here).

The gb28181 plugin's interface used (gb-play; the parts marked "not there yet" are assumed):
  conf      [media] port_range = "gb28181" (the core's [ports.gb28181]), rtp_timeout_ms, bind_ip;
            [play] grace_ms, backoff_initial_ms
  admin     play {"device","channel","transport"?} -> session view {"id", "bus": {"video","audio"}}
            stop {"id"} | {"channel"}
            playback / download {"device","channel","start","end" (epoch s),"speed"?} -> view
            playback_control {"id","action": "pause"|"play"|"teardown","scale"?}
            streams -> {"sessions": [...]}
            broadcast {"device","channel","source"} (source: a bus audio stream of G.711A)
  calls     a call to gb:<channel> or gb:<device>/<channel> is a viewer of the channel's live stream
  bus       gb28181/<device>/<channel>/video | /audio (src/media/ingest.hpp)
  logs      "gb28181: MediaStatus 121 from ..."

Frames are compared by hash: gb-consumer (tests/plugins/gb-consumer) hashes each bus frame with
FNV-1a 64; fnv1a64() below does the same over the simulator's expected access units
(gb_media_sim.MediaAssets.video_frames: the ffmpeg ES cut at its AUDs)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gb_env import DEV1, GbTest, PASSWORD, PLATFORM, free_port, wait_until  # noqa: E402,F401
from gb_media_sim import MediaAssets  # noqa: E402


def fnv1a64(b):
    h = 14695981039346656037
    for x in b:
        h = ((h ^ x) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


_hash_cache = {}


def expected_video_hashes(vcodec, seconds=2):
    key = (vcodec, seconds)
    if key not in _hash_cache:
        _hash_cache[key] = [fnv1a64(f) for f in MediaAssets.get(vcodec, seconds).video_frames]
    return _hash_cache[key]


def is_cyclic_slice(got, expected):
    """got is a contiguous run of the looped expected list (a live stream joined at a keyframe)."""
    if not got:
        return False
    n = len(expected)
    for start in (i for i, h in enumerate(expected) if h == got[0]):
        if all(expected[(start + k) % n] == h for k, h in enumerate(got)):
            return True
    return False


class GbMediaTest(GbTest):
    media_conf = {"media": {"port_range": "gb28181", "bind_ip": "127.0.0.1", "rtp_timeout_ms": 1500},
                  "play": {"grace_ms": 500, "backoff_initial_ms": 100}}
    plugins_extra = {"gb-consumer": {}}

    @classmethod
    def setUpClass(cls):
        MediaAssets.get("h264", 2)
        MediaAssets.get("h265", 2)

    def setUp(self):
        self.conf_over = dict(self.media_conf, **type(self).conf_over)
        super().setUp()

    def server(self, **kw):
        j = super().server(**kw)
        j.core.setdefault("ports", {})["gb28181"] = {"min": 42000, "max": 42999}
        j.write_core(j.core)
        return j

    # -- gb-consumer ---------------------------------------------------------------------------------
    def consumer(self, verb, body=None, expect=200):
        return self.j.cmd("gb-consumer", verb, body, expect)

    def watch(self, device, channel, track="video"):
        r = self.consumer("subscribe", {"stream": f"gb28181/{device}/{channel}/{track}"})
        self.assertEqual(r["status"], 0)
        return r["sub"]

    def frames(self, sub, start=0):
        return self.consumer("frames", {"sub": sub, "from": start})

    def wait_frames(self, sub, video, timeout=30):
        return wait_until(lambda: (lambda f: f if f["video"] >= video else None)(self.frames(sub)), timeout)

    def play(self, device, channel, transport=None, expect=200):
        body = {"device": device, "channel": channel}
        if transport:
            body["transport"] = transport
        return self.cmd("play", body, expect)

    def stop(self, **which):
        return self.cmd("stop", which)

    def viewer(self, channel, device=None):
        r = self.consumer("call", {"to": f"gb:{device}/{channel}" if device else f"gb:{channel}"})
        self.assertEqual(r["status"], 0)
        return r["leg"]

    def end_viewer(self, leg):
        self.assertEqual(self.consumer("end", {"leg": leg})["status"], 0)

    # -- devices -------------------------------------------------------------------------------------
    def media_device(self, device_id=DEV1, transport="udp", **kw):
        """A registered device with its catalog known to the platform, media side ready."""
        dev = self.registered_device(device_id, **kw)
        self.provision_transport(device_id, transport)
        return dev

    def provision_transport(self, device_id, transport):
        self.cmd("update", {"id": device_id, "media_transport": transport.replace("_", "-")})

    def assertVideoIdentical(self, frames, vcodec):
        kinds = frames["kinds"]
        video = [h for h, k in zip(frames["hashes"], kinds) if k == "v"]
        self.assertGreater(len(video), 0)
        self.assertTrue(is_cyclic_slice(video, expected_video_hashes(vcodec)),
                        "every video frame byte-identical to the encoded ES, in order, none missing")
        self.assertEqual(frames["vcodec"], vcodec)
