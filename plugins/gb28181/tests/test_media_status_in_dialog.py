"""gb28181 playback: a MediaStatus 121 sent in the dialog as RFC 3261 and the document's step 13
have it (From = the dialog's local URI, i.e. the channel the INVITE named) is answered 200 and
ends the session: the sender of a MESSAGE in a known INVITE dialog (Call-ID + our To tag) is the
session's device, not the From user (it used to be refused 403 "unknown device")."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from media_env import DEV1, GbMediaTest  # noqa: E402


class MediaStatusInDialogTest(GbMediaTest):
    def test_media_status_121_from_the_channel_uri(self):
        dev = self.media_device(DEV1)
        ch = dev.channels[0]["DeviceID"]
        self.cmd("playback", {"device": DEV1, "channel": ch, "start": 1796637600, "end": 1796637602})
        inv = dev.wait("invite", timeout=15)
        dev.wait("media_end", call_id=inv["call_id"], timeout=15)
        dev.wait("media_status", notify_type=121, status=200)
        self.j.wait_for_log(r"MediaStatus 121 from")
        dev.wait("bye_received", call_id=inv["call_id"])


if __name__ == "__main__":
    unittest.main()
