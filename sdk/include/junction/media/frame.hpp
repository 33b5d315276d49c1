// The C++ side of media frames (conventions in junction/media_frame.h): the view every sdk/media
// producer (RTP depacketizers, the PS demuxer) hands to its consumer and every sdk/media consumer
// (RTP packetizers, the PS muxer) takes. Pure data, no allocation.
#pragma once

#include <junction/media_frame.h>

#include <cstddef>
#include <cstdint>

namespace junction::media {

// One frame: payload bytes + metadata. The bytes are borrowed: owned by whoever produced the
// view and valid only until the next call into that producer (copy them, or copy into a bus
// buffer with host->buf_alloc, to keep them).
struct FrameView {
  const uint8_t* data = nullptr;
  size_t size = 0;
  jn_media_meta meta{};
};

// The frame a bus buffer carries (null data when the buffer carries no frame).
inline FrameView frame_of(const jn_buf* buf) {
  if (!buf || !(buf->flags & JN_BUF_MEDIA)) return {};
  return FrameView{buf->data, buf->len, buf->meta};
}

}  // namespace junction::media
