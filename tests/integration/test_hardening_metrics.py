"""Metrics fed by what a peer sends: a plugin (the io-echo test plugin's "count" command) labels a
counter with a value a peer chose. A value with a quote, a backslash and a newline must come out
escaped (the exposition stays parseable), and a peer inventing values cannot grow the series of
one metric beyond limits.metric_series_per_name: the excess lands in {overflow="true"}. (The
shipped plugins label by a fixed vocabulary; this is the core's guard for any plugin that does
not.)"""
import re

from junction_test import JunctionTest, free_port, main, wait_until  # noqa: E402

SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*"'
                    r'(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")*\})? \S+$')


class MetricsLabelsTest(JunctionTest):
    def test_peer_chosen_label_values_are_escaped_and_capped(self):
        j = self.server(plugins={"io-echo": {"tcp_listen": f"127.0.0.1:{free_port()}",
                                             "http_listen": f"127.0.0.1:{free_port()}"}})
        j.core["limits"] = {"metric_series_per_name": 5}
        j.write_core(j.core)
        j.start()
        names = ['q"b\\s\nn'] + [f"made-up-{i}" for i in range(10)]
        for n in names:
            j.cmd("io-echo", "count", {"name": "peer_messages_total", "value": n})

        def scrape():
            text = j.api("GET", "/metrics", expect=200)
            m = re.search(r"^junction_metric_series_dropped_total (\d+)$", text, re.M)
            return text if m and int(m.group(1)) == len(names) - 5 else None
        # 5 series of the name (the first 5 message names) + the overflow series with the other 6.
        text = wait_until(scrape, timeout=10, what="the overflowing samples to be counted")
        lines = [l for l in text.splitlines() if l and not l.startswith("# ")]
        bad = [l for l in lines if not SAMPLE.match(l)]
        self.assertEqual(bad, [])
        series = [l for l in lines if l.startswith("peer_messages_total{")]
        self.assertEqual(len(series), 6, series)
        self.assertIn('peer_messages_total{plugin="io-echo",name="q\\"b\\\\s\\nn"} 1', series)
        self.assertIn('peer_messages_total{overflow="true"} 6', series)

        # Again: a known series adds up (the core's per-slot counter cache), an overflowing one
        # still goes to the overflow series and is counted as dropped each time (never cached).
        for n in [names[1], names[1], names[-1], names[-1], names[-1]]:
            j.cmd("io-echo", "count", {"name": "peer_messages_total", "value": n})

        def again():
            text = j.api("GET", "/metrics", expect=200)
            m = re.search(r"^junction_metric_series_dropped_total (\d+)$", text, re.M)
            return text if m and int(m.group(1)) == len(names) - 5 + 3 else None
        text = wait_until(again, timeout=10, what="the repeated overflowing samples to be counted")
        self.assertIn('peer_messages_total{plugin="io-echo",name="made-up-0"} 3', text)
        self.assertIn('peer_messages_total{overflow="true"} 9', text)


if __name__ == "__main__":
    main()
