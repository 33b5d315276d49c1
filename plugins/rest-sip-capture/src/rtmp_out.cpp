#include "rtmp_out.hpp"

#if __has_include(<junction/rtmp/publisher.hpp>)
#include <junction/rtmp/publisher.hpp>
#define CAPTURE_HAVE_RTMP 1
#else
#define CAPTURE_HAVE_RTMP 0
#endif

namespace capture {

#if CAPTURE_HAVE_RTMP
namespace {

namespace rtmp = junction::rtmp;

class PublisherOut final : public RtmpOut, private rtmp::PublisherCallbacks {
 public:
  PublisherOut(const RtmpTarget& t, size_t max_queue, RtmpOutEvents& ev, bool batched)
      : ev_(ev), pub_(config(t, max_queue, batched), *this) {}
  void on_connected() override { pub_.on_connected(); }
  void on_bytes(const uint8_t* d, size_t n) override { pub_.on_bytes(d, n); }
  void on_disconnected() override { pub_.on_disconnected(); }
  void push_video(const junction::media::FrameView& f, uint32_t dts, uint32_t pts) override { pub_.push_video(f, dts, pts); }
  void push_audio(const junction::media::FrameView& f, uint32_t ts) override { pub_.push_audio(f, ts); }
  void flush() override { pub_.flush(); }
  size_t held() const override { return pub_.held(); }
  bool publishing() const override { return pub_.status() == rtmp::PublisherStatus::Publishing; }
  void unpublish() override { pub_.unpublish(); }
  std::string save() const override { return pub_.save(); }
  bool restore(std::string_view b, std::string& e) override { return pub_.restore(b, e); }

 private:
  static rtmp::PublisherConfig config(const RtmpTarget& t, size_t max_queue, bool batched) {
    rtmp::PublisherConfig c;
    c.hold_media = batched;
    c.url = t.url;
    c.stream = t.stream;
    c.max_queue_bytes = max_queue;
    return c;
  }
  void send(const uint8_t* d, size_t n) override { ev_.rtmp_send(d, n); }
  void on_status(rtmp::PublisherStatus s, std::string_view reason) override {
    OutStatus o = OutStatus::Connecting;
    switch (s) {
      case rtmp::PublisherStatus::Connecting: o = OutStatus::Connecting; break;
      case rtmp::PublisherStatus::Publishing: o = OutStatus::Publishing; break;
      case rtmp::PublisherStatus::Failed: o = OutStatus::Failed; break;
      case rtmp::PublisherStatus::Closed: o = OutStatus::Closed; break;
      default: return;
    }
    ev_.rtmp_status(o, reason);
  }
  RtmpOutEvents& ev_;
  rtmp::Publisher pub_;
};

}  // namespace

std::unique_ptr<RtmpOut> make_rtmp_out(const RtmpTarget& t, size_t max_queue, RtmpOutEvents& ev, bool batched) {
  return std::make_unique<PublisherOut>(t, max_queue, ev, batched);
}
bool rtmp_available() { return true; }
#else
std::unique_ptr<RtmpOut> make_rtmp_out(const RtmpTarget&, size_t, RtmpOutEvents&, bool) { return nullptr; }
bool rtmp_available() { return false; }
#endif

}  // namespace capture
