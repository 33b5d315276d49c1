"""`junction ctl`, the real binary against a real server: tables a person can read for health,
plugins, routes, lookup, calls, media, bus and devices (with a header and rows checked against
the admin API), --json printing the API's JSON for scripts, and errors as one line on stderr with
the HTTP status and a non-zero exit code."""
import json
import os
import re
import sys

from junction_test import SOURCE, TOKEN, wait_until

sys.path.insert(0, os.path.join(SOURCE, "plugins", "intercom-json", "tests"))
from intercom_env import PLUGIN as INTERCOM, BoxTest, main  # noqa: E402

A, B = "call-peer-a", "call-peer-b"
ROUTES = [{"match": "exact", "pattern": "svc:help", "targets": ["peerb:desk"]}]


def table(out, title=None):
    """(header, rows) of the table in ctl's output (after the line `title`, if given); columns
    are separated by two or more spaces."""
    lines = out.splitlines()
    if title is not None:
        lines = lines[lines.index(title) + 1:]
    block = []
    for line in lines:
        if not line.strip():
            break
        block.append(re.split(r" {2,}", line.strip()))
    return block[0], block[1:]


class CtlTest(BoxTest):
    def start(self):
        return self.start_box(plugins={A: {"on_offer": "answer"}, B: {"on_offer": "ring"}}, routes=ROUTES,
                              server={"media_loops": 1})

    def ok(self, j, *args):
        rc, out, err = j.ctl(*args)
        self.assertEqual((rc, err), (0, ""), (args, out))
        return out

    def test_listings_are_tables_and_json_for_scripts(self):
        j = self.start()

        # health: key/value lines.
        out = self.ok(j, "health")
        self.assertRegex(out, r"(?m)^status +ok$")
        self.assertRegex(out, r"(?m)^plugins +3$")
        self.assertEqual(json.loads(self.ok(j, "--json", "health"))["status"], "ok")

        # plugins: one row per plugin, in load order, the columns the API reports.
        head, rows = table(self.ok(j, "plugins"))
        self.assertEqual(head[:6], ["NAME", "VERSION", "ABI", "GEN", "RELOADS", "RESOURCES"])
        api = j.api("GET", "/api/v1/plugins", expect=200)
        self.assertEqual([r[0] for r in rows], [p["name"] for p in api])
        row = dict(zip(head, rows[0]))
        self.assertEqual((row["NAME"], row["VERSION"], row["ABI"], row["GEN"], row["RELOADS"]),
                         (INTERCOM, api[0]["version"], api[0]["abi"], "0", "0"))
        self.assertEqual(json.loads(self.ok(j, "plugins", "--json")), api)

        # routes: the static route, the namespaces.
        out = self.ok(j, "routes")
        head, rows = table(out, "static routes")
        self.assertEqual(head, ["MATCH", "PATTERN", "TARGETS", "STRATEGY", "TIMEOUT", "ORIGIN"])
        self.assertEqual(rows[0][:4], ["exact", "svc:help", "peerb:desk", "single"])
        head, rows = table(out, "namespaces")
        self.assertEqual(head, ["SCHEME", "PLUGIN"])
        self.assertIn(["peera", A], rows)
        self.assertEqual(json.loads(self.ok(j, "--json", "routes")), j.api("GET", "/api/v1/routes", expect=200))
        head, rows = table(self.ok(j, "lookup", "svc:help"), "")
        self.assertEqual((head, rows), (["TARGET", "PLUGIN"], [["peerb:desk", B]]))

        # calls: a call in progress (B keeps ringing) is a row with both legs.
        self.assertEqual(self.ok(j, "calls"), "no calls in progress\n")
        r = j.cmd(A, "originate", {"from": "peera:door/1", "to": "svc:help"})
        self.assertEqual(r["status"], 0, r)
        wait_until(lambda: j.api("GET", "/api/v1/calls", expect=200) and
                   j.api("GET", "/api/v1/calls", expect=200)[0]["state"] == "ringing", what="the call to ring")
        call = j.api("GET", "/api/v1/calls", expect=200)[0]
        head, rows = table(self.ok(j, "calls"))
        self.assertEqual(head, ["CALL", "FROM", "TO", "STATE", "STRATEGY", "AGE", "LEGS"])
        self.assertEqual(len(rows), 1)
        row = dict(zip(head, rows[0]))
        self.assertEqual((row["CALL"], row["FROM"], row["TO"], row["STATE"], row["STRATEGY"]),
                         (str(call["id"]), "peera:door/1", "svc:help", "ringing", "single"))
        self.assertEqual(row["LEGS"], f"a:{A} {call['legs'][0]['state']}; b:{B} ringing -> peerb:desk")
        self.assertEqual([c["id"] for c in json.loads(self.ok(j, "--json", "calls"))], [call["id"]])

        # media: one row per media loop.
        head, rows = table(self.ok(j, "media"))
        self.assertEqual(head[:4], ["LOOP", "CPU", "PINNED", "SOCKETS"])
        loops = j.api("GET", "/api/v1/media", expect=200)["loops"]
        self.assertEqual([(r[0], r[1], r[2]) for r in rows], [(str(l["loop"]), str(l["cpu"]), "yes" if l["pinned"] else "no") for l in loops])
        self.assertEqual(len(json.loads(self.ok(j, "--json", "media"))["loops"]), 1)

        # devices: what the plugins' list-devices verb reports (here intercom-json's families).
        self.assertEqual(self.ok(j, "devices"), "no devices\n")
        screen = self.screen(j, "screen-a", room="101")
        head, rows = table(self.ok(j, "devices"))
        self.assertEqual(head, ["PLUGIN", "DEVICE", "TYPE", "ROOM", "ONLINE", "PEER", "LAST SEEN"])
        self.assertEqual(len(rows), 1)
        row = dict(zip(head, rows[0]))
        self.assertEqual((row["PLUGIN"], row["DEVICE"], row["TYPE"], row["ROOM"], row["ONLINE"]),
                         (INTERCOM, "screen-a", str(type(screen).type), "101", "yes"))
        self.assertRegex(row["PEER"], r"^127\.0\.0\.1:\d+$")
        raw = json.loads(self.ok(j, "--json", "devices"))
        self.assertEqual(list(raw), [INTERCOM])
        self.assertEqual(raw[INTERCOM]["families"][0]["devices"][0]["id"], "screen-a")

        # Actions print one line; cmd prints the plugin's JSON.
        self.assertRegex(self.ok(j, "reload", A), rf"^reloaded {A}: generation 1, cut-over \d+ us .*old copy unloaded\n$")
        self.assertEqual(json.loads(self.ok(j, "cmd", A, "info"))["generation"], 1)

    def test_errors_are_one_line_with_the_status(self):
        j = self.start()
        env = dict(os.environ, JUNCTION_TOKEN="wrong")
        rc, out, err = j.ctl("plugins", env=env)
        self.assertEqual((rc, out, err), (1, "", "junction ctl: 401 Unauthorized: wrong token\n"))
        # --json: the same line, and the API's error body on stdout for scripts.
        rc, out, err = j.ctl("--json", "plugins", env=env)
        self.assertEqual((rc, json.loads(out), err), (1, {"error": "wrong token"}, "junction ctl: 401 Unauthorized: wrong token\n"))
        rc, out, err = j.ctl("unload", "nope")
        self.assertEqual((rc, out, err), (1, "", "junction ctl: 404 Not Found: no plugin named 'nope' is loaded\n"))
        rc, out, err = j.ctl("log-level", A, "loud")
        self.assertEqual((rc, err), (1, "junction ctl: 400 Bad Request: 'level' must be one of error, warn, info, debug, trace\n"))
        rc, out, err = j.ctl("devices", A)  # a plugin without list-devices, named explicitly
        self.assertEqual(rc, 1)
        self.assertRegex(err, r"^junction ctl: 404 Not Found: .*\n$")
        # Bad usage: exit 2, before any request.
        for args, words in ((("frobnicate",), "unknown command 'frobnicate'"), (("reload",), "'reload' takes 1 argument(s)"),
                            (("cmd", A, "info", "not json"), "'not json' is not a JSON object")):
            rc, out, err = j.ctl(*args)
            self.assertEqual((rc, out), (2, ""), args)
            self.assertTrue(err.startswith(f"junction ctl: {words}\n"), err)
        # The server gone: exit 3, one line saying so.
        self.assertEqual(j.stop(), 0)
        rc, out, err = j.ctl("health")
        self.assertEqual((rc, out), (3, ""))
        self.assertRegex(err, r"^junction ctl: cannot connect to the admin API at 127\.0\.0\.1:\d+: Connection refused \(is junction running\?\)\n$")

    def test_token_from_the_state_dir(self):
        j = self.server(plugins={})
        j.core["admin"]["token"] = ""
        j.write_core(j.core)
        j.start()
        self.assertRegex(self.ok(j, "health"), r"(?m)^status +ok$")
        with open(os.path.join(j.dir, "var", "admin.token")) as f:
            self.assertNotEqual(f.read().strip(), TOKEN)  # ctl did not use the conf's test token


if __name__ == "__main__":
    main()
