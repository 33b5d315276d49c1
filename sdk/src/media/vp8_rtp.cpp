// VP8 (RFC 7741) <-> RTP (vp8_rtp.hpp says what and why).
#include <junction/media/vp8_rtp.hpp>

#include <cstring>

namespace junction::media {

Vp8Depacketizer::Vp8Depacketizer(const DepacketizerConfig& cfg) : RtpDepacketizer(cfg, JN_MEDIA_VIDEO, 90000) {
  if (!ok()) return;
  cap_ = cfg.max_frame ? cfg.max_frame : kDefaultMaxFrame;
  buf_ = alloc_bytes(cap_);
  if (!buf_) fail_init(RtpError::NoMemory);
}

void Vp8Depacketizer::on_reset() {
  open_ = damaged_ = key_ = false;
  len_ = 0;
}

void Vp8Depacketizer::finish(FrameSink sink) {
  if (!open_) return;
  if (damaged_ || len_ == 0)
    drop_frame();
  else
    emit(sink, buf_.get(), len_, pts_, key_ ? static_cast<uint32_t>(JN_MF_KEY) : 0u);
  on_reset();
}

void Vp8Depacketizer::on_flush(FrameSink sink) { finish(sink); }

RtpError Vp8Depacketizer::on_payload(const proto::rtp::Header& h, int64_t pts, const uint8_t* p, size_t n, bool gap,
                                     FrameSink sink) {
  // Payload descriptor (RFC 7741 4.2).
  size_t off = 1;
  if (n < 1) return RtpError::BadPayload;
  const bool x = p[0] & 0x80, s = p[0] & 0x10;
  const uint8_t pid = p[0] & 0x07;
  if (x) {
    if (n < 2) return RtpError::BadPayload;
    const uint8_t e = p[1];
    off = 2;
    if (e & 0x80) {  // I: PictureID, 7 or 15 bits
      if (off >= n) return RtpError::BadPayload;
      off += (p[off] & 0x80) ? 2 : 1;
    }
    if (e & 0x40) ++off;           // L: TL0PICIDX
    if (e & 0x30) ++off;           // T or K: TID/Y/KEYIDX
  }
  if (off >= n) {
    // A packet with a descriptor and no data is broken; the frame it belonged to is damaged.
    if (open_) damaged_ = true;
    return off == n ? RtpError::Empty : RtpError::BadPayload;
  }
  const uint8_t* data = p + off;
  const size_t len = n - off;
  // A new timestamp closes the frame in progress (its marker was lost).
  if (open_ && h.timestamp != ts_) {
    damaged_ = damaged_ || gap;
    finish(sink);
  }
  if (s && pid == 0) {
    if (open_) {  // a second start for the same timestamp: the first attempt is broken
      damaged_ = true;
      finish(sink);
    } else if (gap) {
      skip_frames(1);  // whole frames may have gone: the next one carries DISCONT
    }
    open_ = true;
    damaged_ = false;
    key_ = vp8_is_keyframe(data, len);
    ts_ = h.timestamp;
    pts_ = pts;
    len_ = 0;
  } else {
    if (!open_) {  // the start of this frame was lost: skip to its end
      open_ = true;
      damaged_ = true;
      ts_ = h.timestamp;
      pts_ = pts;
      len_ = 0;
    }
    if (gap) damaged_ = true;
  }
  RtpError ret = RtpError::None;
  if (!damaged_) {
    if (len > cap_ - len_) {
      damaged_ = true;
      ret = RtpError::TooLarge;
    } else {
      std::memcpy(buf_.get() + len_, data, len);
      len_ += len;
    }
  }
  if (h.marker) finish(sink);
  return ret;
}

Vp8Packetizer::Vp8Packetizer(const PacketizerConfig& cfg) : RtpPacketizer(cfg, 90000) {}

RtpError Vp8Packetizer::on_frame(const FrameView& f, uint32_t ts, PacketSink sink) {
  if (f.size == 0 || !f.data) return RtpError::BadFrame;
  const size_t r = room() - 1;  // one descriptor byte per packet
  for (size_t off = 0; off < f.size;) {
    size_t take = f.size - off < r ? f.size - off : r;
    uint8_t* pl = payload();
    pl[0] = off == 0 ? 0x10 : 0x00;  // S on the first packet, PartID 0
    std::memcpy(pl + 1, f.data + off, take);
    off += take;
    send(sink, take + 1, ts, off == f.size);
  }
  return RtpError::None;
}

}  // namespace junction::media
