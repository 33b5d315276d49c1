// The plugin's media side as PlayCenter sees it, plus the core hooks the plugin forwards to it.
// ingest_port.cpp adapts it onto MediaIngest (src/media/ingest.hpp); unit tests of the sessions
// use a fake.
#pragma once

#include "conf.hpp"
#include "play/center.hpp"

#include <junction/plugin.hpp>

#include <memory>
#include <string>
#include <string_view>

namespace gb::play {

class PlayMedia : public MediaPort {
 public:
  virtual ~PlayMedia() = default;
  virtual bool available() const = 0;
  virtual void configure(const MediaConfKeys&) {}
  virtual jn_status start() { return JN_OK; }
  void attach(PlayCenter* c) { center_ = c; }
  // Core hooks; true: the event was the media side's (the plugin does nothing else with it).
  virtual bool on_udp(jn_handle, uint64_t, const jn_datagram*, size_t) { return false; }
  virtual bool on_tcp(const jn_tcp_event&) { return false; }
  virtual bool on_timer(jn_handle, uint64_t) { return false; }
  virtual bool on_post(uint64_t) { return false; }
  virtual bool on_bus(jn_handle, uint64_t, jn_buf*) { return false; }
  virtual bool on_work_done(jn_handle, uint64_t, jn_status) { return false; }
  virtual bool on_event(std::string_view, std::string_view) { return false; }
  // Broadcast / talk: audio from bus stream `source` to a device (G.711A plain RTP or PS).
  virtual MediaOpened open_sender(const std::string&, const std::string&, Transport, const std::string&, bool, int, uint32_t) {
    MediaOpened o;
    o.error = "media sender not built";
    return o;
  }
  virtual bool answer_sender(uint32_t, const std::string&, uint16_t, bool, int, std::string& error) {
    error = "media sender not built";
    return false;
  }
  // A call's viewer of a live stream (media.gop_cache on): bus streams "<base>/video|audio" of its
  // own that start from the cached GOP (MediaIngest::viewer_stream); "" = use the live streams.
  virtual std::string viewer_stream(uint32_t, const std::string&) { return {}; }
  virtual void drop_viewer_stream(uint32_t, const std::string&) {}
  // The media loop a channel's live stream runs (or will run) on: loop-local consumers of it put
  // their sockets and bus subscriptions there (MediaIngest::live_loop). 0: the control loop.
  virtual uint32_t live_loop(const std::string&, const std::string&) { return 0; }
  virtual std::string save() { return {}; }
  virtual bool restore(std::string_view, std::string&) { return true; }

 protected:
  PlayCenter* center_ = nullptr;
};

std::unique_ptr<PlayMedia> make_play_media(junction::sdk::Host host);

}  // namespace gb::play
