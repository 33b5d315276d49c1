"""Hot reload of xxxcid-gateway during an active talk: the call, its pending state and the
media in both directions survive, and the call then ends normally."""
import threading

from xx_common import GatewayTest, NAME, DOOR, CALLEE
from junction_test import main


class ReloadTest(GatewayTest):
    def calls_without_counters(self):
        c = self.calls()
        for d in c["doors"]:
            d.pop("video_in"), d.pop("audio_in")
        return c

    def test_reload_during_talk_keeps_call_and_media(self):
        phone = self.phone()
        door = self.door()
        self.answered_call(door, phone)
        phone.order("enable_video", DOOR)
        self.wait_until(lambda: self.calls()["phones"][0]["video"])
        self.talk(door, phone)
        door.send_audio(b"a-start")  # latches the door's audio address
        phone.wait_media("audio", 1)
        before = self.calls_without_counters()
        stop = threading.Event()
        sent = {"v": 0, "a": 0, "p": 0}

        def pump():
            while not stop.is_set():
                door.send_video(b"v%d" % sent["v"]); sent["v"] += 1
                door.send_audio(b"a%d" % sent["a"]); sent["a"] += 1
                phone.send_audio(b"p%d" % sent["p"]); sent["p"] += 1
                stop.wait(0.002)

        t = threading.Thread(target=pump)
        t.start()
        phone.wait_media("video", 50)
        for _ in range(3):
            status, body = self.j.request("POST", f"/api/v1/plugins/{NAME}/reload")
            self.assertEqual(status, 200, body)
        n_video, n_audio, n_door = len(phone.video), len(phone.audio), len(door.audio_rx)
        phone.wait_media("video", n_video + 50)
        phone.wait_media("audio", n_audio + 50)
        door.wait_audio(n_door + 50)
        stop.set()
        t.join()
        self.assertEqual(self.stats()["reloads"], 3)
        self.assertEqual(before, self.calls_without_counters())
        self.assertGreater(self.calls()["doors"][0]["video_in"], 100)
        # Every packet sent (no loss on loopback at this rate) arrived in order, across reloads.
        self.wait_until(lambda: len(phone.video) >= sent["v"] and len(door.audio_rx) >= sent["p"])
        self.assertEqual(phone.video, [b"v%d" % i for i in range(sent["v"])])
        self.assertEqual(door.audio_rx, [b"p%d" % i for i in range(sent["p"])])
        # The call goes on: unlock, then the door hangs up.
        m = phone.mark()
        phone.order("unlock", DOOR)
        phone.wait("unlock success", start=m)
        self.assertTrue(door.hangup(CALLEE))
        self.wait_until(lambda: self.calls() == {"doors": [], "phones": []})
        self.assertEqual(self.metric("junction_bus_payload_copies_total"), 0)


if __name__ == "__main__":
    main()
