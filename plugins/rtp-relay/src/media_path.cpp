// The media path: a batch of datagrams of one socket, on the socket's media loop, under its
// shard's lock only. Validate, (SRTP) unprotect in place, latch, count, publish on the bus by
// reference, forward, (SRTP) protect, send. No allocation per packet, no payload copy unless a
// bus subscriber holds the buffer and the packet must be protected.
#include "relay.hpp"

namespace rtp_relay {

namespace {
void drop(uint64_t& side_counter, Count& total) {
  ++side_counter;
  total.add();
}
}  // namespace

// Socket cookie: gen << 32 | shard << 24 | stream id << 2 | side << 1 [| 1 on a legacy RTCP
// socket]; the RTCP socket of a port_bind pair is known by its handle.
void Relay::on_media(jn_handle sock, uint64_t cookie, const jn_datagram* d, size_t n) {
  uint32_t shard = static_cast<uint32_t>(cookie >> 24) & 0xff;
  if (shard >= shards_.size()) return;  // a socket of a shard this process does not run
  Shard& sh = *shards_[shard];
  std::lock_guard<std::mutex> lock(sh.mu);
  sh.media_locks.add();
  uint32_t id = static_cast<uint32_t>(cookie >> 2) & 0x3fffff;
  uint32_t gen = static_cast<uint32_t>(cookie >> 32);
  Stream* st = id < sh.streams.size() ? sh.streams[id].get() : nullptr;
  if (!st || st->gen != gen) {
    sh.stats.stale.add(n);
    return;
  }
  int s = static_cast<int>((cookie >> 1) & 1);
  Side& in = st->side[s];
  Side& out = st->side[1 - s];
  bool rtcp_sock = (cookie & 1) != 0 || (in.rtcp != 0 && sock == in.rtcp);
  uint64_t now = host_.now_ms();
  in.last_ms = now;
  // The SSRC-change budget is per second; the window restarts here (no timer scan over sides).
  if (in.ssrc_window_s != now / 1000) {
    in.ssrc_window_s = now / 1000;
    in.ssrc_window = 0;
  }
  for (size_t i = 0; i < n; ++i) relay_one(sh, in, out, rtcp_sock, d[i].buf);
  flush(sh);
}

void Relay::relay_one(Shard& sh, Side& in, Side& out, bool rtcp_sock, jn_buf* b) {
  MediaCounters& c = sh.stats;
  c.rx.add();
  bool is_rtcp = rtcp_sock || rtp::looks_like_rtcp(b->data, b->len);
  // 1. SRTP terminated here: authenticate and decrypt in place (sole owner needed).
  if (in.srtp && in.srtp_in.valid()) {
    if (b->len < 12 || (b->data[0] >> 6) != 2) return drop(in.err_malformed, c.malformed);
    jn_buf* w = writable(sh, b);
    if (!w) return drop(in.err_srtp, c.srtp);
    b = w;
    uint32_t len = b->len;
    if (!in.srtp_in.unprotect(b->data, len, is_rtcp)) return drop(in.err_srtp, c.srtp);
    b->len = len;
  }
  // 2. Validate.
  rtp::Header h;
  if (is_rtcp) {
    rtp::RtcpInfo ri;
    if (rtp::parse_rtcp(b->data, b->len, ri, 0) != rtp::Error::None) return drop(in.err_malformed, c.malformed);
  } else if (rtp::parse(b->data, b->len, h) != rtp::Error::None) {
    return drop(in.err_malformed, c.malformed);
  }
  // 3. Source: latch the first, then hold on to it (or require the SDP address).
  bool on_rtcp_port = rtcp_sock;
  jn_addr& peer = on_rtcp_port ? in.peer_rtcp : in.peer_rtp;
  bool& latched = on_rtcp_port ? in.latched_rtcp : in.latched_rtp;
  switch (in.latch) {
    case Latch::Symmetric:
      if (!latched) {
        peer = b->src;
        latched = true;
        if (!on_rtcp_port && !in.latched_rtcp && in.mux) in.peer_rtcp = b->src;
      } else if (!addr_eq(peer, b->src)) {
        return drop(in.err_source, c.source);
      }
      break;
    case Latch::Strict:
      if (!addr_eq(on_rtcp_port ? in.sdp_rtcp : in.sdp_rtp, b->src)) return drop(in.err_source, c.source);
      break;
    case Latch::Off: break;
  }
  // 4. Stats (and SSRC flood control: many new SSRCs per second are dropped, not tracked).
  if (is_rtcp) {
    ++in.rtcp_packets;
    in.rtcp_bytes += b->len;
    b->flags |= JN_BUF_RTCP;
  } else {
    if (in.rs.received() && h.ssrc != in.rs.ssrc() && ++in.ssrc_window > ssrc_limit_) return drop(in.err_ssrc_flood, c.ssrc_flood);
    ++in.packets;
    in.bytes += b->len;
    in.rs.update(h.seq, h.ssrc, h.timestamp, b->rx_ns);
  }
  // 5. Publish the plain packet on the bus (by reference).
  if (publish_) {
    if (in.bus_id) host_.bus_publish_id(in.bus_id, b);
    else host_.bus_publish(in.bus, b);
  }
  // 6. Extra endpoints get the plain packet (the same buffer: sent by reference).
  for (auto& f : in.forwards) {
    const jn_addr& fto = is_rtcp ? f.to_rtcp : f.to_rtp;
    if (!fto.family) continue;  // a subscriber still to answer, or one without an RTCP address
    jn_send& fo = sh.out.emplace_back();
    fo = jn_send{};
    fo.sock = is_rtcp && f.rtcp ? f.rtcp : f.rtp;
    fo.to = fto;
    fo.buf = b;
    ++f.packets;
  }
  if (sh.out.size() >= kSendBatch) flush(sh);
  // 7. Destination.
  jn_handle sock;
  const jn_addr* to;
  if (is_rtcp && !out.mux) {
    sock = out.rtcp;
    to = &out.peer_rtcp;
  } else {
    sock = out.rtp;
    to = &out.peer_rtp;
  }
  if (!to->family || !sock) return drop(in.err_nodest, c.nodest);
  if (out.srtp) {
    // Never plain toward an SRTP side: without a protect context yet (before the answer) the
    // packet is dropped.
    if (!out.srtp_out.valid()) return drop(in.err_srtp, c.srtp);
    // Protect in place when nobody else holds the buffer; a bus subscriber that kept a
    // reference makes it shared, and then (only then) the packet is copied.
    // Forwarded copies of this packet are still queued: they must stay plain.
    jn_buf* w = in.forwards.empty() ? writable(sh, b) : copy_of(sh, b);
    // No room for the auth tag (a near-MTU packet): a counted copy has it.
    if (w && w->tailroom < SRTP_MAX_TRAILER_LEN) w = copy_of(sh, w);
    if (!w || w->tailroom < SRTP_MAX_TRAILER_LEN) return drop(in.err_srtp, c.srtp);
    b = w;
    uint32_t len = b->len;
    if (!out.srtp_out.protect(b->data, len, is_rtcp)) return drop(in.err_srtp, c.srtp);
    b->tailroom -= len - b->len;
    b->len = len;
  }
  jn_send& o = sh.out.emplace_back();
  o = jn_send{};
  o.sock = sock;
  o.to = *to;
  o.buf = b;
  ++in.forwarded;
  c.forwarded.add();
  if (sh.out.size() == kSendBatch) flush(sh);
}

// The buffer itself when this plugin is its only holder, else a counted private copy.
jn_buf* Relay::writable(Shard& sh, jn_buf* b) {
  if (!host_.buf_is_shared(b)) return b;
  return copy_of(sh, b);
}
jn_buf* Relay::copy_of(Shard& sh, jn_buf* b) {
  jn_buf* c = host_.api()->buf_copy(host_.ctx(), b);
  if (!c) return nullptr;
  sh.stats.payload_copies.add();
  sh.copies.push_back(c);
  return c;
}
void Relay::flush(Shard& sh) {
  if (!sh.out.empty()) host_.udp_send(sh.out.data(), sh.out.size());
  sh.out.clear();
  for (auto* c : sh.copies) host_.buf_unref(c);
  sh.copies.clear();
}

}  // namespace rtp_relay
