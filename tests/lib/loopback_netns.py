"""Browser tests run in a network namespace whose only interface is `lo` (`unshare -n`): Chromium
then has no other address to gather candidates on or send checks from, so nothing leaves the
machine (the suite's rule: loopback only) and ICE pairs are loopback pairs.

    import loopback_netns
    NETNS = loopback_netns.enter(__name__ == "__main__")   # before anything else starts

Run as the main script, enter() re-runs the file inside a new namespace with `lo` up and exits
with its status; inside (or when imported by another test file) it returns whether this process
is in such a namespace. Where the namespace cannot be made (no permission) it returns False and
the file's tests skip themselves with the reason: ctest then reports the file Skipped (exit 77,
junction_test.main), never Passed."""
import os
import subprocess
import sys

VAR = "JN_LOOPBACK_NETNS"  # "1": inside the namespace; "0": could not make one


def enter(is_main):
    state = os.environ.get(VAR)
    if state is not None or not is_main:
        return state == "1"
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        os.environ[VAR] = "0"
        return False
    env = dict(os.environ, **{VAR: "1"})
    sys.exit(subprocess.run(["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"', sys.executable, *sys.argv],
                            env=env).returncode)
