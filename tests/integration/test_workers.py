"""The core's worker pool (ABI 2.1 work_submit / work_cancel / on_work_done), driven through the
worker-test plugin (tests/plugins/worker-test): run() on a worker thread, on_work_done exactly once
on the loop that submitted (control loop and media loop 1), a bounded queue (JN_ERR_LIMIT,
counted), cancel before start, and the reload/unload drain rule: queued jobs cancelled, running
ones waited for -- without blocking the control loop -- before the old instance goes."""
import http.client
import re
import threading

from junction_test import JunctionTest, main, wait_until

JN_OK, JN_ERR_NOT_FOUND, JN_ERR_STATE, JN_ERR_LIMIT, JN_ERR_CANCELLED = 0, -2, -7, -9, -13


class WorkersTest(JunctionTest):
    def start(self, threads=2, max_queued=1024, loops=1, other=False):
        plugins = {"worker-test": {}}
        if other:
            plugins["media-echo"] = {"sockets": 1}
        j = self.server(plugins=plugins, server={"media_loops": loops})
        j.core["workers"] = {"threads": threads, "max_queued": max_queued}
        j.write_core(j.core)
        return j.start()

    def tearDown(self):
        # A failed assertion must not leave jobs blocked on the gate: the server's stop drains them.
        for j in self.servers:
            if j.proc is not None and j.proc.poll() is None:
                try:
                    j.request("POST", "/api/v1/plugins/worker-test/cmd/release", {})
                except (OSError, http.client.HTTPException):
                    pass
        super().tearDown()

    def stats(self, j):
        return j.cmd("worker-test", "stats")

    def metric(self, j, name):
        text = j.api("GET", "/metrics", expect=200)
        m = re.search(rf"^{name} (\S+)$", text, re.M)
        return float(m.group(1)) if m else None

    def block_workers(self, j, threads):
        """Occupies every worker thread with a job blocked on the plugin's gate."""
        r = j.cmd("worker-test", "submit", {"n": threads, "block": True})
        self.assertEqual(r["statuses"], [JN_OK] * threads)
        wait_until(lambda: self.stats(j)["started"] == threads, what=f"{threads} jobs running")
        return r["handles"]

    def test_completions_on_the_submitting_loop_run_on_a_worker(self):
        j = self.start()
        r = j.cmd("worker-test", "submit", {"n": 5})
        self.assertEqual(r["statuses"], [JN_OK] * 5)
        self.assertEqual(j.cmd("worker-test", "submit", {"n": 5, "loop": 1})["post"], JN_OK)
        st = wait_until(lambda: (lambda s: s if s["done_ok"] == 10 else None)(self.stats(j)), what="10 completions")
        self.assertEqual(st["media_submits"], [JN_OK] * 5)
        loops = {st["control_tid"], st["media_tid"]}
        self.assertEqual(len(loops), 2)  # the control loop and media loop 1 are distinct threads
        self.assertEqual(len(st["jobs"]), 10)
        for job in st["jobs"]:
            self.assertEqual(job["completions"], 1, job)
            self.assertEqual(job["done_status"], JN_OK, job)
            want = st["media_tid"] if job["loop"] == 1 else st["control_tid"]
            self.assertEqual(job["submit_tid"], want, job)
            self.assertEqual(job["done_tid"], want, job)  # on_work_done on the submitting loop
            self.assertNotIn(job["run_tid"], loops, job)  # run() never on a loop thread
        self.assertEqual((st["wrong_handle"], st["unknown"]), (0, 0))
        # A finished job's handle is dead.
        self.assertEqual(j.cmd("worker-test", "cancel", {"handle": st["jobs"][0]["handle"]})["status"], JN_ERR_NOT_FOUND)
        self.assertEqual(self.metric(j, "junction_work_completed_total"), 10)

    def test_flood_beyond_max_queued_is_refused_and_counted(self):
        j = self.start(threads=2, max_queued=4)
        self.block_workers(j, 2)
        r = j.cmd("worker-test", "submit", {"n": 10, "block": True})
        self.assertEqual(r["statuses"], [JN_OK] * 4 + [JN_ERR_LIMIT] * 6)
        j.wait_for_log(r"work_submit refused: 4 jobs wait for a worker already")
        self.assertEqual(self.metric(j, "junction_work_refused_total"), 6)
        j.cmd("worker-test", "release")
        st = wait_until(lambda: (lambda s: s if s["done_ok"] == 6 else None)(self.stats(j)), what="6 completions")
        self.assertEqual(st["refused"], 6)
        self.assertTrue(all(job["completions"] == (1 if job["submit_status"] == JN_OK else 0) for job in st["jobs"]))

    def test_cancel_before_start_completes_once_with_cancelled(self):
        j = self.start(threads=2, max_queued=8)
        running = self.block_workers(j, 2)
        queued = j.cmd("worker-test", "submit", {"n": 2, "block": True})["handles"]
        self.assertEqual(j.cmd("worker-test", "cancel", {"handle": queued[0]})["status"], JN_OK)
        self.assertEqual(j.cmd("worker-test", "cancel", {"handle": running[0]})["status"], JN_ERR_STATE)  # running
        self.assertEqual(j.cmd("worker-test", "cancel", {"handle": 12345})["status"], JN_ERR_NOT_FOUND)
        wait_until(lambda: self.stats(j)["done_cancelled"] == 1, what="the cancelled job's on_work_done")
        j.cmd("worker-test", "release")
        st = wait_until(lambda: (lambda s: s if s["done_ok"] == 3 else None)(self.stats(j)), what="3 completions")
        by_handle = {job["handle"]: job for job in st["jobs"]}
        self.assertEqual(by_handle[queued[0]]["done_status"], JN_ERR_CANCELLED)
        self.assertEqual(by_handle[queued[0]]["run_tid"], 0)  # it never ran
        self.assertEqual(by_handle[queued[0]]["done_tid"], st["control_tid"])
        self.assertTrue(all(job["completions"] == 1 for job in st["jobs"]), st["jobs"])
        self.assertEqual(st["done_cancelled"], 1)
        self.assertEqual(j.cmd("worker-test", "cancel", {"handle": queued[0]})["status"], JN_ERR_NOT_FOUND)

    def test_reload_waits_for_running_jobs_and_cancels_queued_ones(self):
        j = self.start(threads=2, max_queued=8, other=True)
        self.block_workers(j, 2)
        self.assertEqual(j.cmd("worker-test", "submit", {"n": 3, "block": True})["statuses"], [JN_OK] * 3)
        result = {}
        t = threading.Thread(target=lambda: result.update(r=j.request("POST", "/api/v1/plugins/worker-test/reload")))
        t.start()
        j.wait_for_log(r"worker-test.*draining worker jobs: 3 cancelled, 2 to wait for")
        # The queued jobs got JN_ERR_CANCELLED on the old instance; the reload has not happened.
        st = wait_until(lambda: (lambda s: s if s["done_cancelled"] == 3 else None)(self.stats(j)), what="3 cancellations")
        self.assertEqual((st["generation"], st["done_ok"]), (0, 0))
        self.assertNotIn("r", result)
        # The control loop is not blocked: the other plugin and the admin API answer meanwhile, and
        # the draining plugin refuses new work.
        self.assertEqual(j.cmd("media-echo", "stats")["loops"], 1)
        self.assertEqual(j.cmd("worker-test", "submit", {"n": 1})["statuses"], [JN_ERR_STATE])
        j.cmd("worker-test", "release")  # to the old instance: its running jobs return
        t.join(30)
        status, body = result["r"]
        self.assertEqual(status, 200, body)
        st = self.stats(j)
        # The state was saved after every on_work_done reached the old instance.
        self.assertEqual((st["generation"], st["done_ok"], st["done_cancelled"], st["saved_in_flight"]), (1, 2, 3, 0))
        self.assertTrue(body["old_unloaded"], body)
        # The new instance works.
        self.assertEqual(j.cmd("worker-test", "submit", {"n": 1})["statuses"], [JN_OK])
        wait_until(lambda: self.stats(j)["done_ok"] == 3, what="the new instance's job")

    def test_unload_cancels_queued_jobs_and_waits_for_running_ones(self):
        j = self.start(threads=2, max_queued=8, other=True)
        self.block_workers(j, 2)
        self.assertEqual(j.cmd("worker-test", "submit", {"n": 2, "block": True})["statuses"], [JN_OK] * 2)
        result = {}
        t = threading.Thread(target=lambda: result.update(r=j.request("POST", "/api/v1/plugins/worker-test/unload")))
        t.start()
        j.wait_for_log(r"worker-test.*draining worker jobs: 2 cancelled, 2 to wait for")
        wait_until(lambda: self.stats(j)["done_cancelled"] == 2, what="2 cancellations on the old instance")
        self.assertNotIn("r", result)
        self.assertEqual(j.cmd("media-echo", "stats")["loops"], 1)  # the control loop answers
        j.cmd("worker-test", "release")
        t.join(30)
        self.assertEqual(result["r"][0], 200, result["r"])
        j.wait_for_log(r"plugin worker-test unloaded$")
        self.assertEqual(self.metric(j, "junction_work_cancelled_total"), 2)
        self.assertEqual(self.metric(j, "junction_work_completed_total"), 2)

    def test_a_failed_start_drains_the_jobs_it_submitted(self):
        j = self.server(plugins={"media-echo": {"sockets": 1}}, extra_plugin_confs={"worker-test": {"fail_start": True}},
                        server={"media_loops": 1})
        j.start()
        status, body = j.request("POST", "/api/v1/plugins", {"name": "worker-test"})
        self.assertEqual(status, 422, body)
        self.assertIn("fail_start is set", body["error"])
        j.wait_for_log(r"worker-test.*draining worker jobs: 0 cancelled, 1 to wait for")
        # The slot (and its code) stays until the job is done; the server keeps answering.
        self.assertEqual(j.cmd("media-echo", "stats")["loops"], 1)
        self.assertEqual(self.stats(j)["started"], 1)
        j.cmd("worker-test", "release")
        j.wait_for_log(r"plugin worker-test: the worker jobs of its failed start are drained; slot released")
        self.assertEqual(j.request("GET", "/api/v1/plugins/worker-test")[0], 404)

    def test_server_stop_during_an_unload_drain_waits_for_it(self):
        j = self.start(threads=1)
        self.block_workers(j, 1)
        t = threading.Thread(target=lambda: j.request("POST", "/api/v1/plugins/worker-test/unload"))
        t.start()
        j.wait_for_log(r"worker-test.*draining worker jobs: 0 cancelled, 1 to wait for")
        j.proc.terminate()
        j.wait_for_log(r"stopping: draining plugins")
        self.assertIsNone(j.proc.poll())  # still waiting for the job, not crashed
        try:
            j.request("POST", "/api/v1/plugins/worker-test/cmd/release", {})
        except (OSError, http.client.HTTPException):
            pass  # the job's end lets the server stop, possibly before this reply is written
        t.join(30)
        self.assertEqual(j.wait_exit(), 0)
        j.proc = None
        self.assertRegex(j.log(), r"plugin worker-test unloaded")

    def test_bad_workers_conf_is_refused_with_file_and_line(self):
        for key, value, want in (("threads", 0, r"'workers\.threads' must be between 1 and 1024"),
                                 ("max_queued", "many", r"'workers\.max_queued' must be an integer"),
                                 ("queue", 5, r"workers.*queue")):
            j = self.server(plugins={"worker-test": {}})
            j.core["workers"] = {key: value}
            j.write_core(j.core)
            j.start(expect_ready=False)
            rc = j.wait_exit()
            j.proc = None
            self.assertEqual(rc, 2, j.log())  # a refused configuration
            self.assertRegex(j.log(), r"junction\.toml:\d+: .*" + want)
            self.assertNotIn("junction ready", j.log())


if __name__ == "__main__":
    main()
