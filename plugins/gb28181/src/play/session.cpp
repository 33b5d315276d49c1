#include "play/session.hpp"

#include <cctype>
#include <junction/util/text.hpp>

using junction::util::ascii_iequals;

namespace gb::play {

std::string_view kind_name(Kind k) {
  switch (k) {
    case Kind::Play: return "Play";
    case Kind::Playback: return "Playback";
    case Kind::Download: return "Download";
    case Kind::Talk: return "Talk";
  }
  return "Play";
}

std::optional<Kind> kind_from(std::string_view s) {
  for (Kind k : {Kind::Play, Kind::Playback, Kind::Download, Kind::Talk})
    if (ascii_iequals(s, kind_name(k))) return k;
  return std::nullopt;
}

std::string_view transport_name(Transport t) {
  switch (t) {
    case Transport::Udp: return "udp";
    case Transport::TcpPassive: return "tcp_passive";
    case Transport::TcpActive: return "tcp_active";
  }
  return "udp";
}

std::optional<Transport> transport_from(std::string_view s) {
  for (Transport t : {Transport::Udp, Transport::TcpPassive, Transport::TcpActive})
    if (ascii_iequals(s, transport_name(t))) return t;
  // part 1's device provisioning spells them "tcp-passive" / "tcp-active"
  if (ascii_iequals(s, "tcp-passive") || ascii_iequals(s, "passive")) return Transport::TcpPassive;
  if (ascii_iequals(s, "tcp-active") || ascii_iequals(s, "active")) return Transport::TcpActive;
  return std::nullopt;
}

SsrcAllocator::SsrcAllocator(std::string_view domain) {
  // Digits 4..8 of the domain; a short or odd domain is padded with zeros so y= stays 10 digits.
  for (size_t i = 3; i < 8; ++i) middle_ += (i < domain.size() && std::isdigit(static_cast<unsigned char>(domain[i]))) ? domain[i] : '0';
}

std::string SsrcAllocator::allocate(bool history) {
  for (uint32_t tries = 0; tries < 9999; ++tries) {
    uint32_t seq = next_;
    next_ = next_ >= 9999 ? 1 : next_ + 1;
    std::string s = std::to_string(seq);
    std::string y = std::string(history ? "1" : "0") + middle_ + std::string(4 - s.size(), '0') + s;
    if (used_.insert(y).second) return y;
  }
  return {};
}

void SsrcAllocator::release(std::string_view y) { used_.erase(std::string(y)); }
void SsrcAllocator::reserve(std::string_view y) { used_.insert(std::string(y)); }

}  // namespace gb::play
