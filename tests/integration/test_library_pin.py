"""The rule for libraries with process-wide state (abi.h, library_pin): libsrtp2's srtp_init()
works once per process and it has no complete shutdown. A plugin that pins it through the core
learns it is the first user exactly once per process (and initialises it then), keeps working in
every instance across hot reloads, and its own code still unloads on every reload while the
library stays resident. A library that cannot be loaded is refused with the reason."""
import re

from junction_test import JunctionTest, main


def maps(pid):
    with open(f"/proc/{pid}/maps") as f:
        return f.read()


class LibraryPinTest(JunctionTest):
    def test_pinned_once_initialised_once_works_in_every_instance(self):
        j = self.server(plugins={"lib-pin": {}}).start()
        states = [j.cmd("lib-pin", "state")]
        for _ in range(3):
            status, body = j.request("POST", "/api/v1/plugins/lib-pin/reload")
            self.assertEqual(status, 200, body)
            self.assertTrue(body["old_unloaded"], body)  # the plugin's code left the process
            states.append(j.cmd("lib-pin", "state"))
        self.assertEqual([s["first"] for s in states], [True, False, False, False])
        self.assertEqual([s["srtp_ok"] for s in states], [True] * 4)
        self.assertEqual([s["generation"] for s in states], [0, 1, 2, 3])
        self.assertEqual(len(re.findall(r"library libsrtp2\.so\.1 pinned", j.log())), 1)
        # libsrtp2 on NSS (Debian): the core initialised NSS (for speed) at the first pin, before the
        # plugin's srtp_init, and it stays initialised for every later instance.
        if states[0]["nss"] is not None:
            self.assertEqual([s["nss"] for s in states], [True] * 4)
            self.assertIn("its NSS initialised for speed", j.log())
        # Unloading the only user leaves the library mapped (resident), the plugin's copies gone.
        status, body = j.request("POST", "/api/v1/plugins/lib-pin/unload")
        self.assertEqual(status, 200, body)
        m = maps(j.proc.pid)
        self.assertIn("libsrtp2", m)
        self.assertNotIn("lib-pin", m)

    def test_a_library_that_cannot_load_is_refused(self):
        j = self.server(plugins={"lib-pin": {"lib": "libjunction-no-such-library.so.9"}}).start()
        st = j.cmd("lib-pin", "state")
        self.assertEqual((st["pin_status"], st["first"]), (-2, False))  # JN_ERR_NOT_FOUND
        j.wait_for_log(r"library_pin libjunction-no-such-library\.so\.9: .*cannot open shared object file")


if __name__ == "__main__":
    main()
