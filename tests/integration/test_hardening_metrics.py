"""Metrics fed by what a peer sends: intercom-json labels its received-message counter with the
message name the peer chose. A name with a quote, a backslash and a newline must come out
escaped (the exposition stays parseable), and a peer inventing names cannot grow the series of
one metric beyond limits.metric_series_per_name: the excess lands in {overflow="true"}."""
import json
import re
import socket
import sys
import os

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "plugins", "intercom-json", "tests"))

from junction_test import JunctionTest, free_port, main, wait_until  # noqa: E402
from intercom_env import box_conf  # noqa: E402

SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*"'
                    r'(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")*\})? \S+$')


class MetricsLabelsTest(JunctionTest):
    def test_peer_chosen_label_values_are_escaped_and_capped(self):
        port = free_port()
        j = self.server(plugins={"intercom-json": box_conf(port, bad_limit=1000)})
        j.core["limits"] = {"metric_series_per_name": 5}
        j.write_core(j.core)
        j.start()
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        names = ['q"b\\s\nn'] + [f"made-up-{i}" for i in range(10)]
        for n in names:
            s.sendall(json.dumps({"id": "1", "name": n, "values": {}}).encode() + b"\0")

        def scrape():
            text = j.api("GET", "/metrics", expect=200)
            m = re.search(r"^junction_metric_series_dropped_total (\d+)$", text, re.M)
            return text if m and int(m.group(1)) == len(names) - 5 else None
        # 5 series of the name (the first 5 message names) + the overflow series with the other 6.
        text = wait_until(scrape, timeout=10, what="the overflowing samples to be counted")
        s.close()
        lines = [l for l in text.splitlines() if l and not l.startswith("# ")]
        bad = [l for l in lines if not SAMPLE.match(l)]
        self.assertEqual(bad, [])
        series = [l for l in lines if l.startswith("intercom_messages_received_total{")]
        self.assertEqual(len(series), 6, series)
        self.assertIn('intercom_messages_received_total{plugin="intercom-json",name="q\\"b\\\\s\\nn"} 1', series)
        self.assertIn('intercom_messages_received_total{overflow="true"} 6', series)


if __name__ == "__main__":
    main()
