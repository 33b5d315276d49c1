"""Freezes the live abi.h as tests/abi/frozen/abi_<major>_<minor>.h: the header a plugin built
at that version saw. Done once per released version (2.0 now); never edited afterwards.

The copy renames the include guard and every JN_ macro and enum constant to JNF_, so it can be
included beside the live header (inside a C++ namespace, by gen_layout_check.py) and so a test
plugin can be built against it alone. Type names (jn_*) stay: in C++ they live in the namespace."""
import os
import re
import sys

here = os.path.dirname(os.path.abspath(__file__))
src = os.path.join(here, "..", "..", "sdk", "include", "junction", "abi.h")
text = open(src, encoding="utf-8").read()
major = re.search(r"#define JN_ABI_MAJOR (\d+)", text).group(1)
minor = re.search(r"#define JN_ABI_MINOR (\d+)", text).group(1)
text = text.replace("JUNCTION_ABI_H", f"JUNCTION_ABI_FROZEN_{major}_{minor}_H")
text = re.sub(r"\bJN_", "JNF_", text)
banner = (f"/* FROZEN COPY of sdk/include/junction/abi.h at ABI {major}.{minor} (tests/abi/freeze.py).\n"
          " * Never edit: the build checks the live header against it (tests/abi/gen_layout_check.py). */\n")
out = os.path.join(here, "frozen", f"abi_{major}_{minor}.h")
os.makedirs(os.path.dirname(out), exist_ok=True)
if os.path.exists(out) and "--force" not in sys.argv:
    raise SystemExit(f"{out} exists: a frozen header is never rewritten (--force only before its release)")
open(out, "w", encoding="utf-8").write(banner + text)
print(out)
