"""Replies on the control loop's UDP sockets: while the core delivers a received batch to a
plugin, a datagram the plugin sends on that socket back to the source of one of the batch's
datagrams is queued (copied into a pool buffer) and the replies leave together in one sendmmsg
after the plugin has seen the batch (core/src/host/resources.cpp, ReplyBatch). Every reply
arrives, intact, in order, from the socket it was sent on; junction_udp_tx_batched_total counts
the replies that took that path."""
import re
import socket

from junction_test import JunctionTest, main, wait_until


def metric(text, name, labels):
    m = re.search(r"^" + re.escape(name) + r"\{" + re.escape(labels) + r"\} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


class UdpReplyBatchTest(JunctionTest):
    def test_replies_to_a_batch_arrive_in_order_and_are_counted(self):
        # media_loops = 0: media-echo's socket is on the control loop; it echoes each datagram
        # to its source from the same socket, the same buffer (jn_send.buf).
        j = self.server(plugins={"media-echo": {"sockets": 1}}, server={"media_loops": 0}).start()
        port = j.cmd("media-echo", "ports")[0]["port"]
        clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
        try:
            for c in clients:
                c.bind(("127.0.0.1", 0))
                c.settimeout(5)
            # Rounds of 40 datagrams, both clients' interleaved and sent back to back: the
            # socket's queue holds several at a time, so batches carry more than one source (and
            # no client's receive buffer overflows while it waits for its replies).
            n, per_round = 400, 40
            for r in range(n // per_round):
                sent = {0: [], 1: []}
                for i in range(r * per_round, (r + 1) * per_round):
                    k = i % 2
                    payload = b"reply-batch %d %s" % (i, b"x" * (i % 700))
                    clients[k].sendto(payload, ("127.0.0.1", port))
                    sent[k].append(payload)
                for k, c in enumerate(clients):
                    got = []
                    for _ in sent[k]:
                        data, addr = c.recvfrom(4096)
                        self.assertEqual(addr, ("127.0.0.1", port))  # from the socket it was sent to
                        got.append(data)
                    self.assertEqual(got, sent[k])
            st = j.cmd("media-echo", "stats")
            self.assertEqual(st["sockets"][0]["echoed"], n)
            self.assertEqual(st["send_status"], 0)

            def scrape():
                text = j.api("GET", "/metrics", expect=200)
                return text if metric(text, "junction_udp_tx_batched_total", 'plugin="media-echo"') == n else None
            text = wait_until(scrape, timeout=10, what="every reply counted as batched")
            self.assertEqual(metric(text, "junction_udp_rx_packets_total", 'plugin="media-echo"'), n)
            self.assertEqual(metric(text, "junction_udp_tx_dropped_total", 'plugin="media-echo"'), 0)
        finally:
            for c in clients:
                c.close()


if __name__ == "__main__":
    main()
