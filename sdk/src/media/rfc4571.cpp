// RTP over TCP framing with resynchronisation: see junction/media/rfc4571.hpp.
#include <junction/media/rfc4571.hpp>
#include <junction/proto/rtp.hpp>

#include <algorithm>
#include <cstring>

namespace junction::media {

namespace {
using junction::proto::rtp::rd16;
using junction::proto::rtp::rd32;
inline bool is_rtcp_type(uint8_t b) { return b >= 192 && b <= 223; }  // RFC 5761 4
inline bool pack_start(const uint8_t* p) { return p[0] == 0 && p[1] == 0 && p[2] == 1 && p[3] == 0xBA; }
constexpr size_t kMinFrame = 8;  // an RTCP RR without report blocks
}  // namespace

const char* to_string(TcpFraming f) {
  switch (f) {
    case TcpFraming::Detect: return "detect";
    case TcpFraming::Len16: return "rfc4571";
    case TcpFraming::Interleaved: return "interleaved";
    case TcpFraming::RawPs: return "raw-ps";
  }
  return "?";
}

Rfc4571Deframer::Rfc4571Deframer(const Rfc4571Config& cfg)
    : cfg_(cfg), framing_(cfg.framing), ssrc_(cfg.ssrc), ssrc_known_(cfg.ssrc_known) {
  if (cfg_.max_frame > 65535 || cfg_.max_frame < 12) cfg_.max_frame = 65535;
  buf_.resize(2 * (cfg_.max_frame + 4));
}

namespace {
constexpr uint8_t kStateVersion = 1;
void put64(std::vector<uint8_t>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
uint64_t get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}
constexpr size_t kStateHeader = 1 + 1 + 4 + 1 + 1 + 4 * 8 + 4;  // version .. held length
}  // namespace

std::vector<uint8_t> Rfc4571Deframer::save() const {
  std::vector<uint8_t> out;
  out.reserve(kStateHeader + len_);
  out.push_back(kStateVersion);
  out.push_back(static_cast<uint8_t>(framing_));
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(ssrc_ >> (8 * i)));
  out.push_back(ssrc_known_ ? 1 : 0);
  out.push_back(hunting_ ? 1 : 0);
  put64(out, stats_.packets);
  put64(out, stats_.ps_bytes);
  put64(out, stats_.resyncs);
  put64(out, stats_.skipped_bytes);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(len_ >> (8 * i)));
  out.insert(out.end(), buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(len_));
  return out;
}

bool Rfc4571Deframer::restore(const uint8_t* data, size_t size) {
  if (!data || size < kStateHeader || data[0] != kStateVersion) return false;
  if (data[1] > static_cast<uint8_t>(TcpFraming::RawPs) || data[6] > 1 || data[7] > 1) return false;
  const uint8_t* p = data + 8;
  const size_t held = static_cast<size_t>(p[32]) | static_cast<size_t>(p[33]) << 8 | static_cast<size_t>(p[34]) << 16 |
                      static_cast<size_t>(p[35]) << 24;
  if (held > buf_.size() || size != kStateHeader + held) return false;
  framing_ = static_cast<TcpFraming>(data[1]);
  ssrc_ = static_cast<uint32_t>(data[2]) | static_cast<uint32_t>(data[3]) << 8 | static_cast<uint32_t>(data[4]) << 16 |
          static_cast<uint32_t>(data[5]) << 24;
  ssrc_known_ = data[6] != 0;
  hunting_ = data[7] != 0;
  stats_.packets = get64(p);
  stats_.ps_bytes = get64(p + 8);
  stats_.resyncs = get64(p + 16);
  stats_.skipped_bytes = get64(p + 24);
  if (held) std::memcpy(buf_.data(), data + kStateHeader, held);
  len_ = held;
  finishing_ = false;
  return true;
}

// The RTP/RTCP packet of length len whose first avail bytes are at p. strict: the test used
// while resynchronising, which needs positive evidence (the SSRC, or a PS pack start).
Rfc4571Deframer::Check Rfc4571Deframer::check_rtp(const uint8_t* p, size_t avail, size_t len, bool strict) const {
  if (avail < 2) return Check::NeedMore;
  if ((p[0] >> 6) != 2) return Check::Bad;
  if (is_rtcp_type(p[1])) {
    if (!strict) return Check::Good;
    // RTCP from the device carries its SSRC too; without a known SSRC it proves nothing.
    if (!ssrc_known_) return Check::Bad;
    if (avail < 8) return Check::NeedMore;
    return rd32(p + 4) == ssrc_ ? Check::Good : Check::Bad;
  }
  if (len < 12) return Check::Bad;
  if (cfg_.payload_type >= 0 && (p[1] & 0x7F) != cfg_.payload_type) return Check::Bad;
  if (avail < 12) return Check::NeedMore;
  bool same_ssrc = ssrc_known_ && rd32(p + 8) == ssrc_;
  if (!strict) return (!ssrc_known_ || same_ssrc) ? Check::Good : Check::Bad;
  if (same_ssrc) return Check::Good;
  // Another (or no known) SSRC: believe it only if its payload starts a PS pack.
  size_t hl = 12 + 4u * (p[0] & 0x0F);
  if (p[0] & 0x10) return Check::Bad;  // an extension: the payload start cannot be checked cheaply
  if (hl + 4 > len) return Check::Bad;
  if (avail < hl + 4) return Check::NeedMore;
  return pack_start(p + hl) ? Check::Good : Check::Bad;
}

Rfc4571Deframer::Check Rfc4571Deframer::check_header(size_t pos, TcpFraming mode, bool strict, size_t* frame_len) const {
  const uint8_t* p = buf_.data() + pos;
  size_t avail = len_ - pos;
  size_t hs = mode == TcpFraming::Interleaved ? 4 : 2;
  if (avail < 1) return Check::NeedMore;
  if (mode == TcpFraming::Interleaved && p[0] != '$') return Check::Bad;
  if (avail < hs) return Check::NeedMore;
  size_t len = rd16(p + hs - 2);
  if (len < kMinFrame || len > cfg_.max_frame) return Check::Bad;
  Check c = check_rtp(p + hs, avail - hs, len, strict);
  if (c == Check::Bad) return c;
  *frame_len = len;
  if (strict) {
    // A second header right behind this packet, when its bytes are here, must look right too.
    size_t next = hs + len;
    if (avail >= next + hs + 1) {
      const uint8_t* q = p + next;
      if (mode == TcpFraming::Interleaved && q[0] != '$') return Check::Bad;
      size_t l2 = rd16(q + hs - 2);
      if (l2 < kMinFrame || l2 > cfg_.max_frame || (q[hs] >> 6) != 2) return Check::Bad;
    }
  }
  return c;
}

bool Rfc4571Deframer::detect() {
  if (len_ < 4) return false;
  const uint8_t* p = buf_.data();
  size_t flen = 0;
  if (pack_start(p)) {
    framing_ = TcpFraming::RawPs;
    return true;
  }
  if (p[0] == '$' && p[1] < 4 && check_header(0, TcpFraming::Interleaved, false, &flen) != Check::Bad) {
    framing_ = TcpFraming::Interleaved;
    return true;
  }
  if (check_header(0, TcpFraming::Len16, false, &flen) != Check::Bad) {
    framing_ = TcpFraming::Len16;
    return true;
  }
  return false;
}

bool Rfc4571Deframer::resync(Sink& sink, const char* reason) {
  if (!hunting_) {
    hunting_ = true;
    ++stats_.resyncs;
    sink.on_error(reason);
  }
  return true;
}

void Rfc4571Deframer::feed(const uint8_t* data, size_t size, Sink& sink) {
  while (size) {
    if (framing_ == TcpFraming::RawPs && len_ == 0) {  // no framing: pass the bytes through
      stats_.ps_bytes += size;
      sink.on_packet(Kind::Ps, data, size, 0);
      return;
    }
    size_t k = std::min(size, buf_.size() - len_);
    std::memcpy(buf_.data() + len_, data, k);
    len_ += k, data += k, size -= k;
    process(sink);
  }
}

void Rfc4571Deframer::finish(Sink& sink) {
  finishing_ = true;
  process(sink);
  finishing_ = false;
  stats_.skipped_bytes += len_;
  len_ = 0;
}

void Rfc4571Deframer::process(Sink& sink) {
  size_t pos = 0;
  for (;;) {
    if (framing_ == TcpFraming::Detect && !hunting_) {
      if (len_ < 4) break;
      if (!detect()) resync(sink, "stream starts with neither an RFC 4571 / interleaved RTP header nor a PS pack");
    }
    if (framing_ == TcpFraming::RawPs) {
      if (pos < len_) {
        stats_.ps_bytes += len_ - pos;
        sink.on_packet(Kind::Ps, buf_.data() + pos, len_ - pos, 0);
      }
      pos = len_;
      break;
    }
    if (hunting_) {
      size_t start = pos;
      bool found = false, wait = false;
      for (; pos < len_; ++pos) {
        size_t flen = 0;
        const uint8_t* p = buf_.data() + pos;
        if (framing_ == TcpFraming::Detect && len_ - pos >= 4 && pack_start(p)) {
          framing_ = TcpFraming::RawPs;
          found = true;
          break;
        }
        TcpFraming modes[2] = {framing_, framing_};
        if (framing_ == TcpFraming::Detect) modes[0] = TcpFraming::Interleaved, modes[1] = TcpFraming::Len16;
        for (TcpFraming m : modes) {
          Check c = check_header(pos, m, true, &flen);
          if (c == Check::Good) {
            framing_ = m;
            found = true;
            break;
          }
          if (c == Check::NeedMore) wait = true;
        }
        if (found || wait) break;
      }
      stats_.skipped_bytes += pos - start;
      if (!found) {
        // Keep only what may still start a header; with a full buffer and no candidate, drop it.
        if (pos == 0 && len_ == buf_.size()) {
          stats_.skipped_bytes += len_;
          pos = len_;
        }
        break;
      }
      hunting_ = false;
      const uint8_t* p = buf_.data() + pos;
      size_t hs = framing_ == TcpFraming::Interleaved ? 4 : (framing_ == TcpFraming::Len16 ? 2 : 0);
      if (hs && !is_rtcp_type(p[hs + 1]) && len_ - pos >= hs + 12) {
        ssrc_ = rd32(p + hs + 8);  // adopt (a restarted device shows up with a new SSRC and a pack)
        ssrc_known_ = true;
      }
      continue;
    }
    size_t flen = 0;
    Check c = check_header(pos, framing_, false, &flen);
    if (c == Check::Bad) {
      resync(sink, framing_ == TcpFraming::Len16 ? "RFC 4571 frame does not hold this stream's RTP: resynchronising"
                                                 : "interleaved frame does not hold this stream's RTP: resynchronising");
      ++pos;
      ++stats_.skipped_bytes;
      continue;
    }
    size_t hs = framing_ == TcpFraming::Interleaved ? 4 : 2;
    if (c == Check::NeedMore || len_ - pos < hs + flen) break;
    // A wrong length shows only in the header after the packet: pass a packet on when the next
    // header checks out (one packet of latency; finish() releases the last one).
    size_t next_len = 0;
    Check n = check_header(pos + hs + flen, framing_, false, &next_len);
    if (n == Check::NeedMore && !finishing_) break;
    if (n == Check::Bad) {
      resync(sink, "the header after an RFC 4571 / interleaved frame is wrong (bad length?): resynchronising");
      ++pos;
      ++stats_.skipped_bytes;
      continue;
    }
    const uint8_t* pkt = buf_.data() + pos + hs;
    bool rtcp = is_rtcp_type(pkt[1]);
    if (!rtcp && !ssrc_known_) {
      ssrc_ = rd32(pkt + 8);
      ssrc_known_ = true;
    }
    ++stats_.packets;
    sink.on_packet(rtcp ? Kind::Rtcp : Kind::Rtp, pkt, flen, framing_ == TcpFraming::Interleaved ? buf_[pos + 1] : 0);
    pos += hs + flen;
  }
  if (pos) {
    std::memmove(buf_.data(), buf_.data() + pos, len_ - pos);
    len_ -= pos;
  }
}

}  // namespace junction::media
