// PTZ / FI command codes (GB/T 28181 A.3, commands.hpp).
#include "commands.hpp"

namespace junction::gb {

std::string PtzCode::hex() const {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string s(16, '0');
  for (size_t i = 0; i < 8; ++i) {
    s[2 * i] = kHex[b[i] >> 4];
    s[2 * i + 1] = kHex[b[i] & 0xF];
  }
  return s;
}

PtzCode make_ptz(uint8_t command, uint8_t data1, uint8_t data2, uint8_t data3_nibble, uint16_t address) {
  PtzCode c;
  c.b[0] = 0xA5;
  // Combination code 1: version 0 in the high nibble, (A + 5 + version) & 0xF = 0xF in the low one.
  c.b[1] = static_cast<uint8_t>(((0xA + 0x5 + 0) & 0xF));
  c.b[2] = static_cast<uint8_t>(address & 0xFF);
  c.b[3] = command;
  c.b[4] = data1;
  c.b[5] = data2;
  // Combination code 2: data high nibble (zoom speed, or the high 4 bits of a 12-bit value) and
  // the address's high 4 bits.
  c.b[6] = static_cast<uint8_t>(((data3_nibble & 0xF) << 4) | ((address >> 8) & 0xF));
  unsigned sum = 0;
  for (size_t i = 0; i < 7; ++i) sum += c.b[i];
  c.b[7] = static_cast<uint8_t>(sum & 0xFF);
  return c;
}

PtzCode ptz_move(const PtzMove& m, uint16_t address) {
  uint8_t cmd = 0;
  if (m.pan > 0) cmd |= 0x01;
  if (m.pan < 0) cmd |= 0x02;
  if (m.tilt < 0) cmd |= 0x04;
  if (m.tilt > 0) cmd |= 0x08;
  if (m.zoom > 0) cmd |= 0x10;
  if (m.zoom < 0) cmd |= 0x20;
  // A speed only where its axis moves, as the document's sample and table do.
  return make_ptz(cmd, m.pan != 0 ? m.pan_speed : 0, m.tilt != 0 ? m.tilt_speed : 0,
                  m.zoom != 0 ? static_cast<uint8_t>(m.zoom_speed & 0xF) : 0, address);
}

PtzCode ptz_stop(uint16_t address) { return make_ptz(0, 0, 0, 0, address); }

PtzCode ptz_fi(int iris, int focus, uint8_t iris_speed, uint8_t focus_speed, uint16_t address) {
  uint8_t cmd = 0x40;
  if (focus > 0) cmd |= 0x01;
  if (focus < 0) cmd |= 0x02;
  if (iris > 0) cmd |= 0x04;
  if (iris < 0) cmd |= 0x08;
  return make_ptz(cmd, focus != 0 ? focus_speed : 0, iris != 0 ? iris_speed : 0, 0, address);
}

PtzCode ptz_preset(PresetOp op, uint8_t index, uint16_t address) {
  return make_ptz(static_cast<uint8_t>(op), 0, index, 0, address);
}

PtzCode ptz_cruise(CruiseOp op, uint8_t group, uint16_t value, uint16_t address) {
  switch (op) {
    case CruiseOp::AddPoint:
    case CruiseOp::DeletePoint:
      return make_ptz(static_cast<uint8_t>(op), group, static_cast<uint8_t>(value & 0xFF), 0, address);
    case CruiseOp::Speed:
    case CruiseOp::DwellTime:
      return make_ptz(static_cast<uint8_t>(op), group, static_cast<uint8_t>(value & 0xFF),
                      static_cast<uint8_t>((value >> 8) & 0xF), address);
    case CruiseOp::Start:
      return make_ptz(static_cast<uint8_t>(op), group, 0, 0, address);
  }
  return ptz_stop(address);
}

PtzCode ptz_scan(ScanOp op, uint8_t group, uint16_t value, uint16_t address) {
  if (op == ScanOp::Speed)
    return make_ptz(0x8A, group, static_cast<uint8_t>(value & 0xFF), static_cast<uint8_t>((value >> 8) & 0xF), address);
  return make_ptz(0x89, group, static_cast<uint8_t>(op), 0, address);
}

bool parse_ptz(std::string_view hex, PtzCode& out, std::string& error) {
  if (hex.size() != 16) {
    error = "PTZCmd: " + std::to_string(hex.size()) + " characters, expected 16 hex digits";
    return false;
  }
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < 8; ++i) {
    int h = nib(hex[2 * i]), l = nib(hex[2 * i + 1]);
    if (h < 0 || l < 0) {
      error = "PTZCmd: not hex at offset " + std::to_string(2 * i);
      return false;
    }
    out.b[i] = static_cast<uint8_t>(h << 4 | l);
  }
  if (out.b[0] != 0xA5) {
    error = "PTZCmd: first byte is not A5";
    return false;
  }
  if ((out.b[1] & 0xF) != (((0xA + 0x5 + (out.b[1] >> 4)) & 0xF))) {
    error = "PTZCmd: bad combination code in byte 2";
    return false;
  }
  unsigned sum = 0;
  for (size_t i = 0; i < 7; ++i) sum += out.b[i];
  if (static_cast<uint8_t>(sum & 0xFF) != out.b[7]) {
    error = "PTZCmd: checksum mismatch";
    return false;
  }
  return true;
}

}  // namespace junction::gb
