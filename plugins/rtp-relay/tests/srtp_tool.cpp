// Test peer helper: SRTP protect/unprotect of hex packets on stdin, one per line.
//   rtp_relay_srtp_tool protect|unprotect SUITE KEY_B64 [rtcp]
// Each output line is the processed packet in hex, or "FAIL".
#include <junction/webrtc/srtp.hpp>

#include <junction/proto/sdp.hpp>

#include <iostream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: rtp_relay_srtp_tool protect|unprotect SUITE KEY_B64 [rtcp]\n";
    return 2;
  }
  std::string mode = argv[1];
  auto key = junction::proto::sdp::base64_decode(argv[3]);
  bool rtcp = argc > 4 && std::string(argv[4]) == "rtcp";
  junction::webrtc::srtp_library_init_standalone();
  junction::webrtc::SrtpSession s;
  if (!key || !s.create(junction::webrtc::suite_from_name(argv[2]), *key, mode == "unprotect")) {
    std::cerr << "bad suite or key\n";
    return 2;
  }
  std::string line;
  static const char* hex = "0123456789abcdef";
  while (std::getline(std::cin, line)) {
    std::vector<uint8_t> p(line.size() / 2 + SRTP_MAX_TRAILER_LEN);
    for (size_t i = 0; i + 1 < line.size(); i += 2) p[i / 2] = static_cast<uint8_t>(std::stoi(line.substr(i, 2), nullptr, 16));
    uint32_t len = static_cast<uint32_t>(line.size() / 2);
    bool ok = mode == "protect" ? s.protect(p.data(), len, rtcp) : s.unprotect(p.data(), len, rtcp);
    if (!ok) {
      std::cout << "FAIL\n";
      continue;
    }
    for (uint32_t i = 0; i < len; ++i) std::cout << hex[p[i] >> 4] << hex[p[i] & 15];
    std::cout << "\n";
  }
  return 0;
}
