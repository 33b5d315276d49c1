// RTP / RTCP header parsing and in-place rewriting, and RFC 3550 receiver statistics
// (sequence tracking with wrap, loss, interarrival jitter). Header-only, C++20 standard library
// only, no allocation: safe on the media path.
//
// Validation follows RFC 3550 section 5.1 and A.1: version 2, the CSRC list, the header
// extension and the padding count must fit in the datagram. RTP and RTCP on one port are told
// apart as RFC 5761 section 4 says: second byte 192..223 is RTCP (payload types 64..95 are
// never used for RTP on a muxed port).
#pragma once

#include <cstddef>
#include <cstdint>

namespace junction::proto::rtp {

inline uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline uint32_t rd32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) | (static_cast<uint32_t>(p[2]) << 8) | p[3];
}
inline void wr16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void wr32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

constexpr size_t kFixedHeader = 12;

enum class Error : uint8_t {
  None = 0,
  TooShort,     // fewer than 12 bytes (RTP) / 8 bytes (RTCP)
  BadVersion,   // version field is not 2
  BadCsrc,      // the CSRC list runs past the end
  BadExtension, // the header extension runs past the end
  BadPadding,   // padding count is 0 or larger than the payload
  BadLength,    // RTCP: a length field runs past the end of the compound packet
  BadType       // RTCP: first packet is not SR/RR (or an accepted feedback type)
};

inline const char* to_string(Error e) {
  switch (e) {
    case Error::None: return "ok";
    case Error::TooShort: return "too short";
    case Error::BadVersion: return "wrong version";
    case Error::BadCsrc: return "CSRC list past end";
    case Error::BadExtension: return "header extension past end";
    case Error::BadPadding: return "bad padding";
    case Error::BadLength: return "RTCP length past end";
    case Error::BadType: return "RTCP packet type";
  }
  return "?";
}

struct Header {
  bool padding = false;
  bool extension = false;
  bool marker = false;
  uint8_t csrc_count = 0;
  uint8_t payload_type = 0;
  uint16_t seq = 0;
  uint32_t timestamp = 0;
  uint32_t ssrc = 0;
  uint16_t ext_profile = 0;     // when extension
  size_t header_len = 0;        // fixed + CSRCs + extension: where the payload starts
  size_t payload_len = 0;       // without padding
  size_t padding_len = 0;
};

// Quick check for demultiplexing RTP and RTCP on one port (RFC 5761 section 4).
inline bool looks_like_rtcp(const uint8_t* d, size_t n) { return n >= 8 && (d[0] >> 6) == 2 && d[1] >= 192 && d[1] <= 223; }

inline Error parse(const uint8_t* d, size_t n, Header& h) {
  if (n < kFixedHeader) return Error::TooShort;
  if ((d[0] >> 6) != 2) return Error::BadVersion;
  h.padding = (d[0] & 0x20) != 0;
  h.extension = (d[0] & 0x10) != 0;
  h.csrc_count = d[0] & 0x0f;
  h.marker = (d[1] & 0x80) != 0;
  h.payload_type = d[1] & 0x7f;
  h.seq = rd16(d + 2);
  h.timestamp = rd32(d + 4);
  h.ssrc = rd32(d + 8);
  size_t off = kFixedHeader + 4u * h.csrc_count;
  if (off > n) return Error::BadCsrc;
  if (h.extension) {
    if (off + 4 > n) return Error::BadExtension;
    h.ext_profile = rd16(d + off);
    size_t words = rd16(d + off + 2);
    off += 4 + 4 * words;
    if (off > n) return Error::BadExtension;
  }
  h.header_len = off;
  h.padding_len = 0;
  if (h.padding) {
    if (n == off) return Error::BadPadding;
    size_t pad = d[n - 1];
    if (pad == 0 || pad > n - off) return Error::BadPadding;
    h.padding_len = pad;
  }
  h.payload_len = n - off - h.padding_len;
  return Error::None;
}

// In-place rewrites of the fixed header (the caller must own the bytes).
inline void set_ssrc(uint8_t* d, uint32_t ssrc) { wr32(d + 8, ssrc); }
inline void set_seq(uint8_t* d, uint16_t seq) { wr16(d + 2, seq); }
inline void set_timestamp(uint8_t* d, uint32_t ts) { wr32(d + 4, ts); }
inline void set_payload_type(uint8_t* d, uint8_t pt) { d[1] = static_cast<uint8_t>((d[1] & 0x80) | (pt & 0x7f)); }
inline void set_marker(uint8_t* d, bool m) { d[1] = static_cast<uint8_t>((d[1] & 0x7f) | (m ? 0x80 : 0)); }

// --- RTCP ---------------------------------------------------------------------------------
enum : uint8_t { RTCP_SR = 200, RTCP_RR = 201, RTCP_SDES = 202, RTCP_BYE = 203, RTCP_APP = 204, RTCP_RTPFB = 205, RTCP_PSFB = 206, RTCP_XR = 207 };

struct RtcpInfo {
  uint8_t first_type = 0;    // packet type of the first packet in the compound
  uint32_t sender_ssrc = 0;  // SSRC of the first packet
  size_t packets = 0;        // packets in the compound
  bool has_bye = false;
};

// Walks a compound RTCP packet (RFC 3550 6.1 / A.2). When `srtcp_trailer` is nonzero the last
// that-many bytes (E flag + index + auth tag of SRTCP) are not part of the compound.
inline Error parse_rtcp(const uint8_t* d, size_t n, RtcpInfo& info, size_t srtcp_trailer = 0) {
  if (n < 8 + srtcp_trailer) return Error::TooShort;
  n -= srtcp_trailer;
  info = RtcpInfo{};
  size_t off = 0;
  while (off < n) {
    if (n - off < 4) return Error::BadLength;
    const uint8_t* p = d + off;
    if ((p[0] >> 6) != 2) return Error::BadVersion;
    size_t len = 4u * (static_cast<size_t>(rd16(p + 2)) + 1);
    if (len > n - off) return Error::BadLength;
    if (info.packets == 0) {
      info.first_type = p[1];
      if (p[1] < 192 || p[1] > 223) return Error::BadType;
      if (len >= 8) info.sender_ssrc = rd32(p + 4);
    }
    if (p[1] == RTCP_BYE) info.has_bye = true;
    ++info.packets;
    off += len;
  }
  return Error::None;
}

// --- RFC 3550 receiver statistics (A.1 sequence tracking, A.3 loss, A.8 jitter) -------------
class ReceiverStats {
 public:
  static constexpr uint32_t kMaxDropout = 3000;
  static constexpr uint32_t kMaxMisorder = 100;
  static constexpr uint32_t kMinSequential = 2;
  static constexpr uint32_t kSeqMod = 1u << 16;

  // clock_rate: RTP timestamp units per second for the jitter (0 = unknown: jitter not kept).
  void set_clock_rate(uint32_t hz) { clock_rate_ = hz; }
  uint32_t clock_rate() const { return clock_rate_; }

  // Feeds one packet. arrival_ns: monotonic arrival time. Returns false when the packet is
  // out of the plausible window (counted as `bad`, as A.1 says; a restart after two in a row).
  bool update(uint16_t seq, uint32_t ssrc, uint32_t rtp_ts, uint64_t arrival_ns) {
    ++received_;
    if (!have_ssrc_ || ssrc != ssrc_) {
      // New source (or the first): restart the sequence state and jitter.
      if (have_ssrc_) ++ssrc_changes_;
      have_ssrc_ = true;
      ssrc_ = ssrc;
      init_seq(seq);
      max_seq_ = static_cast<uint16_t>(seq - 1);
      probation_ = kMinSequential;
      have_transit_ = false;
      jitter_ = 0;
    }
    bool ok = update_seq(seq);
    if (ok) update_jitter(rtp_ts, arrival_ns);
    return ok;
  }

  uint64_t received() const { return received_; }
  uint32_t ssrc() const { return ssrc_; }
  uint64_t ssrc_changes() const { return ssrc_changes_; }
  uint64_t bad() const { return bad_; }
  // Highest extended sequence number seen.
  uint64_t extended_max() const { return static_cast<uint64_t>(cycles_) + max_seq_; }
  uint64_t expected() const {
    if (received_in_seq_ == 0) return 0;
    return extended_max() - base_seq_ + 1;
  }
  // Cumulative lost (may be negative with duplicates, clamped at 0 here).
  int64_t lost() const {
    int64_t l = static_cast<int64_t>(expected()) - static_cast<int64_t>(received_in_seq_);
    return l < 0 ? 0 : l;
  }
  // Interarrival jitter in RTP timestamp units (A.8), and in microseconds.
  double jitter_units() const { return jitter_ / 16.0; }
  double jitter_us() const { return clock_rate_ ? jitter_units() * 1e6 / clock_rate_ : 0.0; }

  // For persisting across a hot reload.
  struct Snapshot {
    uint32_t ssrc, base_seq, cycles, bad_seq, probation, clock_rate;
    uint16_t max_seq;
    uint8_t have_ssrc, have_transit;
    uint64_t received, received_in_seq, bad, ssrc_changes;
    int64_t transit;
    uint64_t jitter;
  };
  Snapshot snapshot() const {
    return Snapshot{ssrc_, base_seq_, cycles_, bad_seq_, probation_, clock_rate_, max_seq_, have_ssrc_, have_transit_,
                    received_, received_in_seq_, bad_, ssrc_changes_, transit_, jitter_};
  }
  void restore(const Snapshot& s) {
    ssrc_ = s.ssrc, base_seq_ = s.base_seq, cycles_ = s.cycles, bad_seq_ = s.bad_seq, probation_ = s.probation;
    clock_rate_ = s.clock_rate, max_seq_ = s.max_seq, have_ssrc_ = s.have_ssrc, have_transit_ = s.have_transit;
    received_ = s.received, received_in_seq_ = s.received_in_seq, bad_ = s.bad, ssrc_changes_ = s.ssrc_changes;
    transit_ = s.transit, jitter_ = s.jitter;
  }

 private:
  void init_seq(uint16_t seq) {
    base_seq_ = seq;
    max_seq_ = seq;
    bad_seq_ = kSeqMod + 1;
    cycles_ = 0;
    received_in_seq_ = 0;
  }
  bool update_seq(uint16_t seq) {
    uint16_t udelta = static_cast<uint16_t>(seq - max_seq_);
    if (probation_) {
      if (seq == static_cast<uint16_t>(max_seq_ + 1)) {
        --probation_;
        max_seq_ = seq;
        if (probation_ == 0) {
          init_seq(seq);
          // A.1 counts the packets seen during probation; keep it simple: count this one.
          ++received_in_seq_;
          return true;
        }
      } else {
        probation_ = kMinSequential - 1;
        max_seq_ = seq;
      }
      return true;  // during probation packets are accepted but not yet counted
    }
    if (udelta < kMaxDropout) {
      if (seq < max_seq_) cycles_ += kSeqMod;
      max_seq_ = seq;
    } else if (udelta <= kSeqMod - kMaxMisorder) {
      // A very large jump.
      if (seq == bad_seq_) {
        init_seq(seq);  // two sequential packets: the source restarted
      } else {
        bad_seq_ = (static_cast<uint32_t>(seq) + 1) & (kSeqMod - 1);
        ++bad_;
        return false;
      }
    } else {
      // duplicate or reordered packet
    }
    ++received_in_seq_;
    return true;
  }
  void update_jitter(uint32_t rtp_ts, uint64_t arrival_ns) {
    if (!clock_rate_ || !arrival_ns) return;
    uint64_t arrival_units = arrival_ns / 1000 * clock_rate_ / 1000000;
    int64_t transit = static_cast<int64_t>(static_cast<uint32_t>(arrival_units) - rtp_ts);
    transit = static_cast<int32_t>(static_cast<uint32_t>(transit));
    if (have_transit_) {
      int64_t d = transit - transit_;
      if (d < 0) d = -d;
      // RFC 3550 A.8 integer form: J += |D| - ((J + 8) >> 4), J scaled by 16.
      int64_t j = static_cast<int64_t>(jitter_);
      j += d - ((j + 8) >> 4);
      jitter_ = j < 0 ? 0 : static_cast<uint64_t>(j);
    }
    transit_ = transit;
    have_transit_ = true;
  }

  uint32_t ssrc_ = 0;
  uint32_t base_seq_ = 0;
  uint32_t cycles_ = 0;
  uint32_t bad_seq_ = kSeqMod + 1;
  uint32_t probation_ = 0;
  uint32_t clock_rate_ = 0;
  uint16_t max_seq_ = 0;
  uint8_t have_ssrc_ = 0;
  uint8_t have_transit_ = 0;
  uint64_t received_ = 0;
  uint64_t received_in_seq_ = 0;
  uint64_t bad_ = 0;
  uint64_t ssrc_changes_ = 0;
  int64_t transit_ = 0;
  uint64_t jitter_ = 0;  // scaled by 16
};

}  // namespace junction::proto::rtp
