"""The ABI's two layout guards must fail a build whose header moved a field:
  1. the pins at the end of abi.h (static asserts on every offset and size);
  2. the frozen 2.0 header compared field by field (gen_layout_check.py), which still catches the
     move when someone regenerates the pins after it.
Each case compiles a copy of abi.h with two same-size fields of jn_media_stream swapped (same
sizeof, so only offsets change) and asserts the compiler refuses it naming the field; the
unmodified header must compile, so the check is not failing for another reason."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

SRC = os.environ.get("JN_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
CXX = os.environ.get("CXX", "c++")
CC = os.environ.get("CC", "cc")
ABI = os.path.join(SRC, "sdk", "include", "junction", "abi.h")
FROZEN = os.path.join(SRC, "tests", "abi", "frozen", "abi_2_0.h")
sys.path.insert(0, os.path.join(SRC, "tests", "abi"))
import gen_layout_check  # noqa: E402
import gen_pins  # noqa: E402

SWAP_A = "  uint32_t ssrc;         /* 0 = unknown */\n"
SWAP_B = "  uint32_t direction;    /* JN_DIR_* */\n"


class LayoutBreak(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="jn-abi-")
        os.makedirs(os.path.join(self.dir, "include", "junction"))
        self.header = os.path.join(self.dir, "include", "junction", "abi.h")
        shutil.copy(ABI, self.header)
        self.check = os.path.join(self.dir, "check.cpp")
        gen_layout_check.main(FROZEN, self.check)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def swap_fields(self):
        text = open(self.header).read()
        self.assertIn(SWAP_A + SWAP_B, text, "the fields this test swaps moved: update the test")
        open(self.header, "w").write(text.replace(SWAP_A + SWAP_B, SWAP_B + SWAP_A))

    def compile_cpp(self, *defines):
        cmd = [CXX, "-std=c++20", "-fsyntax-only", "-I", os.path.join(self.dir, "include"), *defines, self.check]
        return subprocess.run(cmd, capture_output=True, text=True)

    def compile_c(self):
        c = os.path.join(self.dir, "plain.c")
        open(c, "w").write("#include <junction/abi.h>\nint main(void) { return 0; }\n")
        return subprocess.run([CC, "-std=c11", "-fsyntax-only", "-I", os.path.join(self.dir, "include"), c],
                              capture_output=True, text=True)

    def test_unmodified_header_passes_both_guards(self):
        r = self.compile_cpp()
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.compile_c()
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_pins_refuse_a_moved_field(self):
        self.swap_fields()
        r = self.compile_c()  # plain C: only the pins in abi.h apply
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("jn_media_stream.ssrc moved", r.stderr)

    def test_frozen_header_refuses_a_moved_field_even_with_regenerated_pins(self):
        self.swap_fields()
        gen_pins.main(self.header)  # someone "fixed" the pins after moving the field
        self.assertEqual(self.compile_c().returncode, 0, "regenerated pins accept the new layout")
        r = self.compile_cpp()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("jn_media_stream.ssrc moved or resized since the frozen header", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
