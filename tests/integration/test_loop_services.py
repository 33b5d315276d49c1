"""Services between loops: post() runs a plugin's on_post on the loop it names (media loop k's
pinned thread, or the control loop), timers started from a media loop run on that loop and may
not be stopped from another, posts survive a hot reload without loss, and a flood of posts to one
loop is bounded. Uses the media-echo test plugin (tests/plugins/media-echo)."""
from junction_test import JunctionTest, main, wait_until

JN_OK, JN_ERR_INVALID, JN_ERR_WRONG_THREAD = 0, -1, -11


class LoopServicesTest(JunctionTest):
    def start(self, loops=2):
        return self.server(plugins={"media-echo": {"sockets": 2}}, server={"media_loops": loops}).start()

    def stats(self, j):
        return j.cmd("media-echo", "stats")

    def test_posts_run_on_the_loop_they_name(self):
        j = self.start()
        for loop, n in ((1, 3), (2, 5), (0, 7)):
            r = j.cmd("media-echo", "post", {"loop": loop, "n": n})
            self.assertEqual((r["status"], r["sent"]), (JN_OK, n), r)
        control = r["control"]  # the thread that ran the admin hook: the control loop
        want = {"jn-media-1": 3, "jn-media-2": 5, control: 7}
        wait_until(lambda: self.stats(j)["posts_by_thread"] == want, what=f"posts counted per thread as {want}")
        self.assertNotIn(control, ("jn-media-1", "jn-media-2"))
        self.assertEqual(j.cmd("media-echo", "post", {"loop": 3, "n": 1})["status"], JN_ERR_INVALID)  # no loop 3

    def test_a_media_loop_timer_runs_there_and_only_there(self):
        j = self.start()
        r = j.cmd("media-echo", "timer", {"loop": 2, "ms": 20})
        self.assertEqual(r["status"], JN_OK)
        wait_until(lambda: self.stats(j)["timer_echo_thread"] != "", what="the timer's post back to the control loop")
        st = self.stats(j)
        self.assertEqual(st["timer_start_status"], JN_OK)
        self.assertEqual(st["timer_thread"], "jn-media-2")  # on_timer on the loop that started it
        self.assertEqual(st["timer_fires"], 1)
        self.assertEqual(st["timer_post_back"], JN_OK)
        self.assertEqual(st["timer_echo_thread"], r["control"])  # and its post reached the control loop
        # A one-shot timer's handle is dead once it fired; a live one from another loop is refused.
        r = j.cmd("media-echo", "timer", {"loop": 1, "ms": 600000})
        wait_until(lambda: self.stats(j)["posts_by_thread"].get("jn-media-1", 0) == 1, what="the timer started on loop 1")
        self.assertEqual(j.cmd("media-echo", "stop_timer")["status"], JN_ERR_WRONG_THREAD)
        j.wait_for_log(r"timer_stop from the control loop: the timer belongs to media loop 1 \(refused")

    def test_loop_local_subscription_gets_the_publishers_buffer_on_its_loop(self):
        """ABI 2.1 bus_subscribe_local: a subscriber on the publisher's media loop receives every
        packet synchronously, on that loop, as the very buffer published (0 copies), read-only;
        it survives a hot reload; it ends on unsubscribe; the control loop may not make one."""
        import socket
        j = self.start()
        port = j.cmd("media-echo", "ports")[0]["port"]  # socket 0: media loop 1
        self.assertEqual(j.cmd("media-echo", "local_tap", {"socket": 0})["status"], JN_OK)
        wait_until(lambda: self.stats(j)["local"]["ops"] == 1, what="the subscription made on loop 1")
        self.assertEqual(self.stats(j)["local"]["status"], JN_OK)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(5)

        def echo(n):
            for i in range(n):
                s.sendto(b"pkt%d" % i, ("127.0.0.1", port))
                s.recvfrom(2048)  # the echo: on_udp (and its publish) ran

        echo(50)
        local = self.stats(j)["local"]
        self.assertEqual((local["deliveries"], local["same_buffer"], local["shared"], local["wrong_thread"]), (50, 50, 50, 0), local)
        status, body = j.request("POST", "/api/v1/plugins/media-echo/reload")
        self.assertEqual(status, 200, body)
        echo(20)
        self.assertEqual(self.stats(j)["local"]["deliveries"], 70)  # the subscription outlived the swap
        status, media = j.request("GET", "/api/v1/media")
        self.assertEqual(status, 200)
        self.assertEqual(media["loops"][0]["local_deliveries"], 70)  # the core counted them on loop 1
        self.assertEqual(j.cmd("media-echo", "local_untap", {"socket": 0})["status"], JN_OK)
        wait_until(lambda: self.stats(j)["local"]["ops"] == 2, what="the unsubscribe on loop 1")
        self.assertEqual(self.stats(j)["local"]["status"], JN_OK)
        echo(10)
        self.assertEqual(self.stats(j)["local"]["deliveries"], 70)  # nothing after the unsubscribe
        self.assertEqual(j.cmd("media-echo", "local_tap_control")["status"], JN_ERR_WRONG_THREAD)
        j.wait_for_log(r"bus_subscribe_local on the control loop \(refused")
        s.close()

    def test_posts_across_reloads_are_all_delivered(self):
        j = self.start()
        total = 0
        for i in range(20):
            for loop in (1, 2):
                r = j.cmd("media-echo", "post", {"loop": loop, "n": 500})
                self.assertEqual(r["status"], JN_OK, r)
                total += r["sent"]
            status, body = j.request("POST", "/api/v1/plugins/media-echo/reload")
            self.assertEqual(status, 200, body)
        # Each outgoing instance posts 100 to each loop from save_state, while the swap holds the
        # loops: every one reaches the instance that came next, none the old one, none lost.
        want = {"successor": 20 * 200}
        wait_until(lambda: self.stats(j)["from_save"] == want, timeout=20, what="posts made during each swap, in its successor")
        wait_until(lambda: sum(self.stats(j)["posts_by_thread"].values()) == total, timeout=20,
                   what=f"{total} posts delivered across 20 reloads")
        self.assertEqual(self.stats(j)["posts_by_thread"], {"jn-media-1": total // 2, "jn-media-2": total // 2})

    def test_post_to_a_loop_is_bounded(self):
        j = self.start(loops=1)
        # Up to 400 000 posts from the control thread in one hook, faster than the loop drains
        # them: the queue fills at 65 536 and the next post is refused (the plugin stops there).
        r = j.cmd("media-echo", "post", {"loop": 1, "n": 400000})
        self.assertEqual(r["status"], -9, r)  # JN_ERR_LIMIT
        self.assertGreaterEqual(r["sent"], 65536)
        wait_until(lambda: self.stats(j)["posts_by_thread"].get("jn-media-1", 0) == r["sent"], timeout=20,
                   what="every accepted post delivered")
        m = j.request("GET", "/metrics")[1]
        self.assertRegex(m, r'junction_media_post_dropped_total\{loop="1"[^}]*\} 1\b')


if __name__ == "__main__":
    main()
