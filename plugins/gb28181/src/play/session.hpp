// The model of one INVITE session with a device (实时预览 / 回放 / 下载 / 语音): its kind, the media
// transport (媒体传输方式) and the SSRC rule. Pure data: no SIP, no sockets; the plugin glue and
// the unit tests share it.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace gb::play {

enum class Kind { Play, Playback, Download, Talk };  // s=Play / s=Playback / s=Download; Talk = audio s=Play
// udp: RTP/AVP. tcp_passive: TCP/RTP/AVP, we listen (a=setup:passive), the device connects.
// tcp_active: TCP/RTP/AVP, we connect to the port in the device's answer (a=setup:active).
enum class Transport { Udp, TcpPassive, TcpActive };

std::string_view kind_name(Kind k);                  // "Play", "Playback", "Download", "Talk"
std::optional<Kind> kind_from(std::string_view s);   // the s= value or the admin name (case-insensitive)
std::string_view transport_name(Transport t);        // "udp", "tcp_passive", "tcp_active"
std::optional<Transport> transport_from(std::string_view s);

// SSRC (y=) allocation, the document's rule: 10 decimal digits, the first 0 for live (实时) and 1
// for history (回放/下载), then digits 4..8 of the platform's 10-digit domain (its civil-code part),
// then a 4-digit sequence 0001..9999 that skips values still in use.
class SsrcAllocator {
 public:
  explicit SsrcAllocator(std::string_view domain);
  // The next free y= for a live (history=false) or history stream; empty when all 9999 are used.
  std::string allocate(bool history);
  void release(std::string_view y);
  // Marks a y= in use again (restored after a hot reload).
  void reserve(std::string_view y);
  size_t in_use() const { return used_.size(); }

 private:
  std::string middle_;  // the 5 domain digits
  uint32_t next_ = 1;
  std::set<std::string> used_;
};

}  // namespace gb::play
