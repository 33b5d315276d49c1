#!/usr/bin/env python3
"""Seeds the fuzz_flv_reader corpus (tests/fuzz/corpus/flv_reader): the ffmpeg-made FLV of the
reader's unit test (H.264 with B-frames + A-law) whole and cut at a few places, fed in several
piece sizes, and small hand-made streams (AAC config + frame, an unknown codec, a bad NAL length).
Input format: fuzz_flv_reader.cpp's header comment. Run once; run_all.py --grow grows it."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "corpus", "flv_reader")
FLV = os.path.join(HERE, "..", "..", "unit", "data", "flv", "screen.flv")


def tag(t, ts, body):
    return bytes([t]) + struct.pack(">I", len(body))[1:] + struct.pack(">I", ts)[1:] + bytes([ts >> 24]) + \
        b"\0\0\0" + body + struct.pack(">I", 11 + len(body))


HEAD = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"
SPS = bytes.fromhex("6742c01ed90141fb0110000003001000000303c0f162e480")
PPS = bytes.fromhex("68cb83cb20")
SEQ = b"\x17\x00\x00\x00\x00\x01" + SPS[1:4] + b"\xff\xe1" + struct.pack(">H", len(SPS)) + SPS + \
    b"\x01" + struct.pack(">H", len(PPS)) + PPS
IDR = b"\x17\x01\x00\x00\x28" + struct.pack(">I", 3) + b"\x65\x88\x84"


def main():
    os.makedirs(OUT, exist_ok=True)
    flv = open(FLV, "rb").read()
    seeds = {
        "ffmpeg_whole": b"\x00\x01" + flv,
        "ffmpeg_pieces7": b"\x07\x01" + flv,
        "ffmpeg_cut": b"\x01\x01" + flv[:2000],
        "aac": b"\x03\x01" + HEAD + tag(8, 0, b"\xaf\x00\x12\x10") + tag(8, 23, b"\xaf\x01\x21\x10\x05"),
        "avc": b"\x05\x01" + HEAD + tag(18, 0, b"\x02\x00\x0aonMetaData") + tag(9, 0, SEQ) + tag(9, 40, IDR),
        "unknown_codec": b"\x00\x00" + HEAD + tag(8, 0, b"\x2f\xff\xfb") + tag(9, 0, b"\x1c\x00\x00"),
        "bad_nal_len": b"\x00\x01" + HEAD + tag(9, 0, SEQ) + tag(9, 40, IDR[:5] + b"\x00\x00\x00\x40\x65"),
    }
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
