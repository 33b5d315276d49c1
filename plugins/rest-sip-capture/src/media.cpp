#include "media.hpp"

#include <cstring>

namespace capture {

namespace rtp = junction::proto::rtp;

size_t build_rr(uint8_t* out, size_t cap, uint32_t own_ssrc, const rtp::ReceiverStats& st, uint64_t& prev_expected,
                uint64_t& prev_received, uint32_t lsr, uint32_t dlsr, std::string_view cname) {
  bool block = st.received() > 0;
  size_t rr_len = 8 + (block ? 24 : 0);
  size_t cn = cname.size() > 255 ? 255 : cname.size();
  size_t sdes_body = 4 + 2 + cn + 1;                 // ssrc, type+len, text, end
  size_t sdes_len = 4 + ((sdes_body + 3) & ~size_t(3));
  if (cap < rr_len + sdes_len) return 0;
  std::memset(out, 0, rr_len + sdes_len);
  out[0] = static_cast<uint8_t>(0x80 | (block ? 1 : 0));
  out[1] = rtp::RTCP_RR;
  rtp::wr16(out + 2, static_cast<uint16_t>(rr_len / 4 - 1));
  rtp::wr32(out + 4, own_ssrc);
  if (block) {
    uint8_t* b = out + 8;
    uint64_t expected = st.expected();
    uint64_t received = expected - static_cast<uint64_t>(st.lost());  // in sequence, as lost() counts
    uint64_t exp_int = expected - prev_expected;
    int64_t lost_int = static_cast<int64_t>(exp_int) - static_cast<int64_t>(received - prev_received);
    prev_expected = expected;
    prev_received = received;
    uint8_t fraction = (exp_int == 0 || lost_int <= 0) ? 0 : static_cast<uint8_t>((lost_int << 8) / static_cast<int64_t>(exp_int));
    int64_t lost = st.lost();
    if (lost > 0x7fffff) lost = 0x7fffff;
    rtp::wr32(b, st.ssrc());
    b[4] = fraction;
    b[5] = static_cast<uint8_t>(lost >> 16);
    b[6] = static_cast<uint8_t>(lost >> 8);
    b[7] = static_cast<uint8_t>(lost);
    rtp::wr32(b + 8, static_cast<uint32_t>(st.extended_max()));
    rtp::wr32(b + 12, static_cast<uint32_t>(st.jitter_units()));
    rtp::wr32(b + 16, lsr);
    rtp::wr32(b + 20, dlsr);
  }
  uint8_t* s = out + rr_len;
  s[0] = 0x81;
  s[1] = rtp::RTCP_SDES;
  rtp::wr16(s + 2, static_cast<uint16_t>(sdes_len / 4 - 1));
  rtp::wr32(s + 4, own_ssrc);
  s[8] = 1;  // CNAME
  s[9] = static_cast<uint8_t>(cn);
  std::memcpy(s + 10, cname.data(), cn);
  return rr_len + sdes_len;
}

size_t build_pli_fir(uint8_t* out, size_t cap, uint32_t own, uint32_t media, uint8_t fir_seq) {
  if (cap < 32) return 0;
  std::memset(out, 0, 32);
  out[0] = 0x80 | 1;  // PLI: FMT 1
  out[1] = rtp::RTCP_PSFB;
  rtp::wr16(out + 2, 2);
  rtp::wr32(out + 4, own);
  rtp::wr32(out + 8, media);
  uint8_t* f = out + 12;
  f[0] = 0x80 | 4;  // FIR: FMT 4, media source 0, FCI = ssrc + seq
  f[1] = rtp::RTCP_PSFB;
  rtp::wr16(f + 2, 4);
  rtp::wr32(f + 4, own);
  rtp::wr32(f + 8, 0);
  rtp::wr32(f + 12, media);
  f[16] = fir_seq;
  return 32;
}

size_t build_dtmf(uint8_t* out, size_t cap, int pt, bool marker, uint16_t seq, uint32_t ts, uint32_t ssrc, uint8_t event,
                  bool end, uint16_t duration) {
  if (cap < 16) return 0;
  out[0] = 0x80;
  out[1] = static_cast<uint8_t>((marker ? 0x80 : 0) | (pt & 0x7f));
  rtp::wr16(out + 2, seq);
  rtp::wr32(out + 4, ts);
  rtp::wr32(out + 8, ssrc);
  out[12] = event;
  out[13] = static_cast<uint8_t>((end ? 0x80 : 0) | 10);  // volume -10 dBm0
  rtp::wr16(out + 14, duration);
  return 16;
}

int dtmf_event(char d) {
  if (d >= '0' && d <= '9') return d - '0';
  if (d == '*') return 10;
  if (d == '#') return 11;
  if (d >= 'A' && d <= 'D') return 12 + (d - 'A');
  return -1;
}

}  // namespace capture
