// PTZ / FI codes against the document's table (where it is right) and its C++ sample.
#include "commands.hpp"

#include <doctest/doctest.h>

using namespace junction::gb;

namespace {
std::string move_hex(int pan, int tilt, int zoom, uint8_t ps, uint8_t ts, uint8_t zs) {
  PtzMove m;
  m.pan = pan;
  m.tilt = tilt;
  m.zoom = zoom;
  m.pan_speed = ps;
  m.tilt_speed = ts;
  m.zoom_speed = zs;
  return ptz_move(m).hex();
}
}  // namespace

TEST_CASE("the document's PTZ table (left corrected per the C++ sample)") {
  CHECK(move_hex(0, 1, 0, 0xFA, 0xFA, 0) == "A50F010800FA00B7");    // 上 up
  CHECK(move_hex(0, -1, 0, 0xFA, 0xFA, 0) == "A50F010400FA00B3");   // 下 down
  // 左: the table repeats the down code (A50F010400FA00B3); the C++ sample sets 0x02 and the
  // pan speed in byte 5: A5 0F 01 02 FA 00 00, sum 0x1B1 -> B1.
  CHECK(move_hex(-1, 0, 0, 0xFA, 0xFA, 0) == "A50F0102FA0000B1");
  CHECK(move_hex(1, 0, 0, 0xFA, 0xFA, 0) == "A50F0101FA0000B0");    // 右 right
  CHECK(move_hex(-1, 1, 0, 0xFA, 0xFA, 0) == "A50F010AFAFA00B3");   // 左上
  CHECK(move_hex(-1, -1, 0, 0xFA, 0xFA, 0) == "A50F0106FAFA00AF");  // 左下
  CHECK(move_hex(1, 1, 0, 0xFA, 0xFA, 0) == "A50F0109FAFA00B2");    // 右上
  CHECK(move_hex(1, -1, 0, 0xFA, 0xFA, 0) == "A50F0105FAFA00AE");   // 右下
  CHECK(ptz_stop().hex() == "A50F0100000000B5");                    // 停止
  CHECK(move_hex(0, 0, 0, 0xFA, 0xFA, 0xA) == "A50F0100000000B5");  // no axis = stop
  CHECK(move_hex(0, 0, 1, 0, 0, 0xA) == "A50F01100000A065");        // 镜头放大 zoom in
  CHECK(move_hex(0, 0, -1, 0, 0, 0xA) == "A50F01200000A075");       // 镜头缩小 zoom out
  CHECK(ptz_fi(1, 0, 0xFA, 0).hex() == "A50F014400FA00F3");         // 光圈放大 iris open
  CHECK(ptz_fi(-1, 0, 0xFA, 0).hex() == "A50F014800FA00F7");        // 光圈缩小 iris close
  CHECK(ptz_fi(0, 1, 0, 0xFA).hex() == "A50F0141FA0000F0");         // 镜头聚焦 focus far
  CHECK(ptz_fi(0, -1, 0, 0xFA).hex() == "A50F0142FA0000F1");        // 镜头放焦 focus near
}

TEST_CASE("every direction x zoom combination: command bits, speeds, checksum") {
  for (int pan = -1; pan <= 1; ++pan)
    for (int tilt = -1; tilt <= 1; ++tilt)
      for (int zoom = -1; zoom <= 1; ++zoom) {
        PtzMove m{pan, tilt, zoom, 0x31, 0x42, 0x7};
        PtzCode c = ptz_move(m, 0x123);
        INFO(pan, " ", tilt, " ", zoom, " ", c.hex());
        uint8_t want = (pan > 0 ? 0x01 : 0) | (pan < 0 ? 0x02 : 0) | (tilt < 0 ? 0x04 : 0) | (tilt > 0 ? 0x08 : 0) |
                       (zoom > 0 ? 0x10 : 0) | (zoom < 0 ? 0x20 : 0);
        CHECK(c.b[0] == 0xA5);
        CHECK(c.b[1] == 0x0F);
        CHECK(c.b[2] == 0x23);  // address low byte
        CHECK(c.b[3] == want);
        CHECK(c.b[4] == (pan ? 0x31 : 0));
        CHECK(c.b[5] == (tilt ? 0x42 : 0));
        CHECK(c.b[6] == ((zoom ? 0x70 : 0) | 0x1));  // zoom speed high nibble, address high nibble
        unsigned sum = 0;
        for (int i = 0; i < 7; ++i) sum += c.b[i];
        CHECK(c.b[7] == (sum & 0xFF));
        PtzCode back;
        std::string error;
        CHECK(parse_ptz(c.hex(), back, error));
        CHECK(back.b == c.b);
      }
}

TEST_CASE("presets, cruise, scan") {
  CHECK(ptz_preset(PresetOp::Set, 3).hex() == "A50F018100030039");     // A5+0F+01+81+00+03 = 0x139
  CHECK(ptz_preset(PresetOp::Call, 3).hex() == "A50F01820003003A");
  CHECK(ptz_preset(PresetOp::Delete, 255).hex() == "A50F018300FF0037");
  CHECK(ptz_cruise(CruiseOp::AddPoint, 1, 5).hex() == "A50F01840105003F");
  CHECK(ptz_cruise(CruiseOp::DeletePoint, 1, 0).hex() == "A50F01850100003B");
  // 12-bit speed 0x2BC: low 8 bits in byte 6, high 4 bits in byte 7's high nibble.
  CHECK(ptz_cruise(CruiseOp::Speed, 2, 0x2BC).hex() == "A50F018602BC2019");
  CHECK(ptz_cruise(CruiseOp::DwellTime, 2, 10).hex() == "A50F0187020A0048");
  CHECK(ptz_cruise(CruiseOp::Start, 2, 0).hex() == "A50F01880200003F");
  CHECK(ptz_scan(ScanOp::Start, 1, 0).hex() == "A50F01890100003F");
  CHECK(ptz_scan(ScanOp::SetLeft, 1, 0).hex() == "A50F018901010040");
  CHECK(ptz_scan(ScanOp::SetRight, 1, 0).hex() == "A50F018901020041");
  CHECK(ptz_scan(ScanOp::Speed, 1, 0x105).hex() == "A50F018A01051055");
  CHECK(ptz_fi(0, 0, 9, 9).hex() == "A50F0140000000F5");  // FI stop
}

TEST_CASE("parse_ptz refuses with a reason") {
  PtzCode c;
  std::string e;
  CHECK_FALSE(parse_ptz("A50F0108", c, e));
  CHECK(e.find("expected 16 hex digits") != std::string::npos);
  CHECK_FALSE(parse_ptz("A50F010800FA00BX", c, e));
  CHECK(e.find("not hex") != std::string::npos);
  CHECK_FALSE(parse_ptz("B50F010800FA00B7", c, e));
  CHECK(e.find("not A5") != std::string::npos);
  CHECK_FALSE(parse_ptz("A50E010800FA00B6", c, e));
  CHECK(e.find("combination code") != std::string::npos);
  CHECK_FALSE(parse_ptz("A50F010800FA00B8", c, e));
  CHECK(e.find("checksum") != std::string::npos);
  CHECK(parse_ptz("a50f010800fa00b7", c, e));  // lower case accepted
  // The document's table row for "left" is a valid code (it is the down code).
  CHECK(parse_ptz("A50F010400FA00B3", c, e));
  CHECK(c.b[3] == 0x04);
}

TEST_CASE("address above 255 goes into byte 7's low nibble") {
  PtzCode c = ptz_stop(0xABC);
  CHECK(c.b[2] == 0xBC);
  CHECK(c.b[6] == 0x0A);
  PtzCode back;
  std::string e;
  CHECK(parse_ptz(c.hex(), back, e));
}
