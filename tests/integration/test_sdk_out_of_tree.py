"""A vendor builds a plugin with its own CMake project pointing only at sdk/, and the core loads it."""
import os
import shutil
import subprocess
import tempfile

from junction_test import JunctionTest, SOURCE, free_port, main


class OutOfTreeTest(JunctionTest):
    def test_example_builds_from_sdk_alone_and_loads(self):
        work = tempfile.mkdtemp(prefix="jn-vendor-")
        try:
            # Copy only sdk/ (as a vendor would receive it) and the example's sources.
            sdk = os.path.join(work, "sdk")
            shutil.copytree(os.path.join(SOURCE, "sdk"), sdk)
            src = os.path.join(work, "vendor-plugin")
            shutil.copytree(os.path.join(SOURCE, "sdk", "examples", "udp-counter"), src)
            build = os.path.join(work, "build")
            subprocess.run(["cmake", "-S", src, "-B", build, "-G", "Ninja", f"-DJUNCTION_SDK={sdk}"], check=True, capture_output=True)
            subprocess.run(["cmake", "--build", build], check=True, capture_output=True)
            lib = os.path.join(build, "plugins", "udp-counter.so")
            self.assertTrue(os.path.exists(lib))
            undefined = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True).stdout
            exported = sorted(l.split()[-1] for l in undefined.splitlines() if " T " in l or " D " in l or " R " in l)
            self.assertEqual(exported, ["junction_plugin_create", "junction_plugin_info"], "plugins export two symbols only")
            port = free_port()
            j = self.server(plugins={"udp-counter": {"listen": f"127.0.0.1:{port}", "library": lib}})
            j.start()
            self.assertEqual(j.cmd("udp-counter", "stats")["received"], 0)
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
