"""Reads the struct layouts out of a Junction ABI header (abi.h or a frozen copy of it).

The header is ours and written in one style: `typedef struct NAME { ... } NAME;`, one member
per line or several of one type separated by commas, function pointers as `R (*name)(...)`,
arrays as `name[N]`. Used by gen_layout_check.py (a frozen header against the live one) and
by gen_pins.py (the static asserts at the end of abi.h)."""
import re

STRUCT = re.compile(r"typedef struct (jn_\w+) \{(.*?)\} \1;", re.S)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def members(body):
    out = []
    # Split on ';' at parenthesis depth 0 (function pointer parameter lists contain none of ours,
    # but be safe).
    depth, cur = 0, ""
    for ch in body:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == ";" and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    names = []
    for decl in out:
        if not decl:
            continue
        fp = re.search(r"\(\s*\*\s*(\w+)\s*\)", decl)
        if fp:
            names.append(fp.group(1))
            continue
        # "uint8_t a, b[3]" -> a, b ; "const jn_str* const* x" -> x
        first, *rest = decl.split(",")
        m = re.search(r"(\w+)\s*(\[[^\]]*\])?\s*$", first)
        names.append(m.group(1))
        for r in rest:
            m = re.search(r"\**\s*(\w+)\s*(\[[^\]]*\])?\s*$", r.strip())
            names.append(m.group(1))
    return names


def structs(path):
    text = strip_comments(open(path, encoding="utf-8").read())
    return [(m.group(1), members(m.group(2))) for m in STRUCT.finditer(text)]


if __name__ == "__main__":
    import sys
    for name, fields in structs(sys.argv[1]):
        print(name, fields)
