// The C++ side of media frames (conventions in junction/media_frame.h): the view every sdk/media
// producer (RTP depacketizers, the PS demuxer) hands to its consumer and every sdk/media consumer
// (RTP packetizers, the PS muxer) takes, and the one consumer interface those producers hand it
// to (FrameSink). Pure data, no allocation.
#pragma once

#include <junction/media_frame.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

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

namespace detail {
template <typename M>
struct error_code_of;
template <typename C, typename R, typename E>
struct error_code_of<R (C::*)(E, const char*)> {
  using type = std::remove_cvref_t<E>;
};
}  // namespace detail

// Where a producer (an RTP depacketizer, the PS demuxer, PsRtpReceiver) hands each whole frame:
// fn(ctx, view), the view's bytes valid only during the call. `error` (optional) hears why
// something was dropped or refused, for a log line: the producer's own code (RtpError, PsError)
// as an int, and a detail. Three pointers, passed by value; nothing allocated.
//   frame_sink(f)  a callable f(const FrameView&) (a lambda);
//   FrameSink(o)   an object with on_frame(const FrameView&) and, if it wants them, on_error(E,
//                  const char*) (E: the producer's error enum); implicit, so such an object is
//                  passed where a FrameSink is taken. Either must outlive the sink.
struct FrameSink {
  void* ctx = nullptr;
  void (*fn)(void* ctx, const FrameView& frame) = nullptr;
  void (*error)(void* ctx, int code, const char* detail) = nullptr;

  FrameSink() = default;
  FrameSink(void* c, void (*f)(void*, const FrameView&), void (*e)(void*, int, const char*) = nullptr)
      : ctx(c), fn(f), error(e) {}
  template <typename T>
    requires requires(T& t, const FrameView& v) { t.on_frame(v); }
  FrameSink(T& t)  // NOLINT(google-explicit-constructor): an on_frame object is a sink
      : ctx(&t), fn([](void* c, const FrameView& v) { static_cast<T*>(c)->on_frame(v); }) {
    if constexpr (requires { &T::on_error; }) {
      error = [](void* c, int code, const char* d) {
        using E = typename detail::error_code_of<decltype(&T::on_error)>::type;
        static_cast<T*>(c)->on_error(static_cast<E>(code), d);
      };
    }
  }

  void operator()(const FrameView& f) const {
    if (fn) fn(ctx, f);
  }
  void fail(int code, const char* detail) const {
    if (error) error(ctx, code, detail);
  }
};

// A sink calling `f(const FrameView&)`; f must outlive the sink.
template <typename F>
FrameSink frame_sink(F& f) {
  return FrameSink{&f, [](void* c, const FrameView& v) { (*static_cast<F*>(c))(v); }};
}

}  // namespace junction::media
