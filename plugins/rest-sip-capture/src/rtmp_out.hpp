// One RTMP output over sdk/rtmp's Publisher (junction/rtmp/publisher.hpp). Kept behind this small
// interface so the rest of the plugin does not depend on the publisher's headers: a build
// without sdk/rtmp (make_rtmp_out returns null) still serves REST + SIP + RTP, and its pushes
// fail with a clear reason.
#pragma once

#include "model.hpp"

#include <junction/media/frame.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace capture {

enum class OutStatus : uint8_t { Connecting, Publishing, Failed, Closed };

// What an output tells its owner (called inside the output's calls).
class RtmpOutEvents {
 public:
  virtual void rtmp_send(const uint8_t* data, size_t len) = 0;
  virtual void rtmp_status(OutStatus s, std::string_view reason) = 0;

 protected:
  ~RtmpOutEvents() = default;
};

class RtmpOut {
 public:
  virtual ~RtmpOut() = default;
  virtual void on_connected() = 0;
  virtual void on_bytes(const uint8_t* data, size_t len) = 0;
  virtual void on_disconnected() = 0;
  // Timestamps in ms on one clock for audio and video.
  virtual void push_video(const junction::media::FrameView& f, uint32_t dts_ms, uint32_t pts_ms) = 0;
  virtual void push_audio(const junction::media::FrameView& f, uint32_t ts_ms) = 0;
  // A batched output (make_rtmp_out's batched) keeps media bytes until flush(); held() counts them.
  virtual void flush() = 0;
  virtual size_t held() const = 0;
  virtual bool publishing() const = 0;
  // Ends the publication politely (FCUnpublish, deleteStream); the caller then closes the connection.
  virtual void unpublish() = 0;
  // Hot reload: the publisher's state while publishing (empty otherwise), and its restore into a
  // new output made with the same target, before any other call (then publishing, no callback).
  virtual std::string save() const = 0;
  virtual bool restore(std::string_view bytes, std::string& error) = 0;
};

// Null when the plugin was built without sdk/rtmp.
// batched: media bytes wait in the publisher until flush() (the call's outputs: one TCP write per
// rtmp_write_ms); otherwise each message goes to rtmp_send at once.
std::unique_ptr<RtmpOut> make_rtmp_out(const RtmpTarget& t, size_t max_queue_bytes, RtmpOutEvents& ev, bool batched);
bool rtmp_available();

}  // namespace capture
