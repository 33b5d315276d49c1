// Port allocation: an RTP/RTCP pair (or one port, for an rtcp-mux forward) on the stream's media
// loop, from the core's named port range (`port_range`, port_bind: every media plugin shares the
// core's ranges) or, deprecated, from the relay's own port_min..port_max. Never called under a
// shard lock: binding and closing wait for the socket's loop, which may wait for that lock.
#include "relay.hpp"

#include <cassert>

namespace rtp_relay {

namespace {
// Cookie bit 0 marks the RTCP socket of a legacy pair (the core's port_bind gives both sockets
// one cookie; the media path tells them apart by handle).
constexpr uint64_t kRtcpBit = 1;
}  // namespace

bool Relay::bind_ports(uint32_t shard, uint64_t cookie, bool pair, BoundPorts& out) {
  assert(locks_held_ == 0);
  out = BoundPorts{};
  jn_udp_options o{};
  o.struct_size = sizeof o;
  o.rcvbuf = rcvbuf_;
  o.sndbuf = rcvbuf_;
  o.max_datagram = 2048;
  o.loop = shard;
  if (!legacy_ports_) {
    jn_port_request r{};
    r.struct_size = sizeof r;
    r.proto = JN_PROTO_UDP;
    r.range = junction::sdk::to_jn(port_range_);
    r.ip = junction::sdk::to_jn(interface_);
    r.pair = pair ? 1 : 0;
    r.udp = &o;
    r.cookie = cookie;
    jn_handle h[2] = {0, 0};
    uint32_t port = 0;
    jn_status st = host_.api()->port_bind(host_.ctx(), &r, h, &port);
    if (st != JN_OK) {
      // The core logs and counts a full range; anything else is a conf problem worth a line.
      if (st != JN_ERR_LIMIT) host_.warn("rtp-relay: port_bind in range '" + port_range_ + "' failed (status " + std::to_string(st) + ")");
      return false;
    }
    out.rtp = h[0];
    out.rtcp = pair ? h[1] : 0;
    out.port = static_cast<uint16_t>(port);
    return true;
  }
  // Deprecated: the relay's own range, an even port and the next, ports another process holds
  // skipped (the bind fails).
  size_t slots = port_used_.size();
  std::string ip = interface_.find(':') != std::string::npos ? "[" + interface_ + "]" : interface_;
  for (size_t tries = 0; tries < slots; ++tries) {
    size_t slot = port_cursor_++ % slots;
    if (port_used_[slot]) continue;
    uint32_t port = static_cast<uint32_t>(port_min_) + 2 * static_cast<uint32_t>(slot);
    jn_handle a = 0, b = 0;
    if (host_.api()->udp_bind(host_.ctx(), junction::sdk::to_jn(ip + ":" + std::to_string(port)), &o, cookie, &a) != JN_OK) continue;
    if (pair &&
        host_.api()->udp_bind(host_.ctx(), junction::sdk::to_jn(ip + ":" + std::to_string(port + 1)), &o, cookie | kRtcpBit, &b) != JN_OK) {
      host_.api()->udp_close(host_.ctx(), a);
      continue;
    }
    port_used_[slot] = 1;
    out.rtp = a;
    out.rtcp = b;
    out.port = static_cast<uint16_t>(port);
    return true;
  }
  return false;
}

// Marks a legacy slot free; the core's range frees a port when its socket is closed.
static void free_slot(Relay& r, uint32_t port) {
  if (!r.legacy_ports_ || port < static_cast<uint32_t>(r.port_min_)) return;
  size_t slot = (port - static_cast<uint32_t>(r.port_min_)) / 2;
  if (slot < r.port_used_.size()) r.port_used_[slot] = 0;
}

void Relay::close_ports(const BoundPorts& p) {
  assert(locks_held_ == 0);
  if (p.rtp) host_.api()->udp_close(host_.ctx(), p.rtp);
  if (p.rtcp) host_.api()->udp_close(host_.ctx(), p.rtcp);
  free_slot(*this, p.port);
}

void Relay::release_forward(Side::Forward& f) {
  if (f.rtp) to_close_.push_back(f.rtp);
  if (f.rtcp) to_close_.push_back(f.rtcp);
  free_slot(*this, f.port);
  f = Side::Forward{};
}

void Relay::release_side(Side& side) {
  for (auto& f : side.forwards) release_forward(f);
  side.forwards.clear();
  if (side.rtp) to_close_.push_back(side.rtp);
  if (side.rtcp) to_close_.push_back(side.rtcp);
  if (side.bus_id) to_release_.push_back(side.bus_id);
  side.bus_id = 0;
  free_slot(*this, side.port);
  side.rtp = side.rtcp = 0;
  side.port = 0;
}

}  // namespace rtp_relay
