// PlayCenter: the platform's INVITE sessions with devices (UAC). Live view (s=Play), playback
// and download (s=Playback / s=Download, MANSRTSP over INFO), with the viewer refcount of
// viewers.hpp on top of live streams. It speaks SIP through a junction::sip::Stack, opens and
// closes receivers through a MediaPort (gb-media's MediaIngest behind an adapter, a fake in the
// unit tests) and asks the plugin (PlayLink) for device routes, keyframes and ending viewers.
//
// Flow: start() opens a receiver (local port + the offer's y=), sends the INVITE (Subject
// "<channel>:<ssrc>,<platform>:0"); 1xx wait; the 2xx's SDP is parsed (answer y= adopted, TCP
// active peer) and handed to the receiver, the ACK sent (again for each 2xx retransmission);
// a failure closes the receiver. stop() CANCELs an INVITE in flight, BYEs an established one.
// A device BYE (断流) or MediaStatus 121 (end of file) ends the session; an RTP timeout BYEs it.
#pragma once

#include "play/mansrtsp.hpp"
#include "play/sdp.hpp"
#include "play/session.hpp"
#include "play/viewers.hpp"

#include <junction/sip/dialog.hpp>
#include <junction/sip/stack.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace gb::play {

struct PlayConf {
  std::string transport = "udp";   // default media transport (a device's conf or the request may override)
  std::string media_ip;            // c= address of our offers ("" = the receiver's bound address, or the SIP host)
  uint32_t download_speed = 4;     // a=downloadspeed of downloads (0: not sent)
  ViewerConf viewers;
};

struct MediaOpened {
  uint32_t id = 0;      // 0: failed
  std::string ip;       // the bound address ("0.0.0.0" is replaced by PlayConf::media_ip / the SIP host)
  uint16_t port = 0;
  std::string stream;   // bus name prefix of the frames
  std::string error;
};

// What PlayCenter needs of the media side (gb-media's MediaIngest, adapted in the plugin).
class MediaPort {
 public:
  virtual MediaOpened open(const std::string& device, const std::string& channel, Transport t, Kind k,
                           uint32_t ssrc, const std::string& record_path) = 0;
  virtual bool answer(uint32_t id, const Answer& a, std::string& error) = 0;
  virtual void close(uint32_t id, const std::string& reason) = 0;
  virtual nlohmann::json stats(uint32_t id) = 0;

 protected:
  ~MediaPort() = default;
};

class PlayLink {
 public:
  // Where the device is reached (the flow it registered from); false + error when offline.
  virtual bool device_flow(const std::string& device, junction::sip::Flow& flow, std::string& error) = 0;
  // The device's media transport (its provisioning) when a request names none.
  virtual std::optional<Transport> device_transport(const std::string& device) = 0;
  virtual void request_keyframe(const std::string& device, const std::string& channel) = 0;
  virtual void end_viewers(const std::vector<std::string>& viewers, const std::string& reason) = 0;
  virtual void session_changed(uint64_t id, const nlohmann::json& view) = 0;  // started / ended (admin waiters, events)
  virtual void log(int level, const std::string& msg) = 0;
  virtual void count_event(std::string_view metric) = 0;
  virtual uint64_t now_ms() = 0;
  virtual void arm_play(uint64_t at_ms) = 0;  // on_tick() at at_ms (UINT64_MAX: nothing due)

 protected:
  ~PlayLink() = default;
};

enum class SessionState { Inviting, Active, Ended };
const char* session_state_name(SessionState s);

struct StartRequest {
  Kind kind = Kind::Play;
  std::string device, channel;
  std::optional<Transport> transport;  // none: PlayConf::transport
  uint64_t start = 0, end = 0;         // Playback / Download (unix seconds)
  uint32_t download_speed = 0;         // 0: PlayConf's
  std::string record_path;             // Download: where the PS goes
};

struct PlaySession {
  uint64_t id = 0;
  Kind kind = Kind::Play;
  Transport transport = Transport::Udp;
  SessionState state = SessionState::Inviting;
  std::string device, channel;
  std::string ssrc, answer_ssrc;
  uint32_t media = 0;
  std::string stream;
  uint16_t local_port = 0;
  std::string local_ip;
  uint64_t start = 0, end = 0;
  uint32_t download_speed = 0;
  std::string record_path;
  std::optional<uint64_t> filesize;
  uint64_t created_ms = 0, answered_ms = 0;
  // SIP
  junction::sip::TxnId txn = 0;   // the INVITE in flight
  std::string invite;             // the INVITE as sent (the dialog is built from it and the 2xx)
  junction::sip::Flow flow;
  bool has_dialog = false;
  junction::sip::Dialog dialog;
  // playback control
  bool paused = false;
  double scale = 1;
  uint32_t rtsp_cseq = 0;
  std::string end_reason;
};

class PlayCenter {
 public:
  PlayCenter(junction::sip::Stack& stack, MediaPort& media, PlayLink& link, std::string platform_id,
             std::string domain, PlayConf conf);
  void set_conf(const PlayConf& c);
  const PlayConf& conf() const { return conf_; }

  // A new INVITE session; its id, or 0 with the reason in error.
  uint64_t start(const StartRequest& r, std::string& error);
  // Ends a session (CANCEL in flight / BYE established). False: unknown id.
  bool stop(uint64_t id, const std::string& reason);
  // Unload / server stop: every session BYEd (or CANCELed) and its receiver closed.
  void stop_all(const std::string& reason);

  // --- viewers of live streams (play on demand) ---
  // A viewer wants a channel's live stream: the stream id (for its bus names once started).
  // transport: for a stream this view starts (and its restarts); none: the device's.
  bool view(const std::string& device, const std::string& channel, const std::string& viewer, std::string& error,
            std::optional<Transport> transport = {});
  void unview(const std::string& channel, const std::string& viewer);
  // The live session of a channel (0 = none).
  uint64_t live_session(const std::string& channel) const;

  // --- playback control (MANSRTSP over INFO) ---
  bool control(uint64_t id, const RtspRequest& r, std::string& error);

  // --- SIP (true: it was ours) ---
  bool on_response(junction::sip::TxnId id, int status, const junction::sip::Message* m);
  // BYE / INFO in one of our dialogs; false for anything else (a MESSAGE in our dialog, e.g. a
  // MediaStatus, goes the plugin's body path: owns() tells it the dialog is ours).
  bool on_request(junction::sip::TxnId id, const junction::sip::Message& m, const junction::sip::Flow& from);
  bool owns(const junction::sip::Message& m) const;
  // A MediaStatus Notify (121: the file ended) from device for channel: the sessions it ends.
  size_t media_status(const std::string& device, const std::string& channel, const std::string& notify_type,
                      std::string_view call_id);

  // --- media events ---
  void on_first_keyframe(uint32_t media);
  void on_keyframe_wanted(uint32_t media);
  void on_media_timeout(uint32_t media, const std::string& detail);
  void on_media_end(uint32_t media, const std::string& detail);

  void on_tick();

  const PlaySession* find(uint64_t id) const;
  const std::map<uint64_t, PlaySession>& sessions() const { return sessions_; }
  nlohmann::json view_of(const PlaySession& s);
  const Viewers& viewers() const { return viewers_; }

  // Hot reload: every session with its dialog and the viewer table.
  nlohmann::json to_json() const;
  bool from_json(const nlohmann::json& j, std::string& error);

 private:
  PlaySession* by_media(uint32_t media);
  PlaySession* by_txn(junction::sip::TxnId id);
  void run(const std::vector<Action>& actions);
  void end(PlaySession& s, const std::string& reason, bool send_bye);
  void sweep_ended();
  void rearm();
  uint64_t start_live(const std::string& device, const std::string& channel, std::string& error);

  junction::sip::Stack& stack_;
  MediaPort& media_;
  PlayLink& link_;
  std::string platform_, domain_;
  PlayConf conf_;
  SsrcAllocator ssrc_;
  Viewers viewers_;
  std::map<uint64_t, PlaySession> sessions_;
  std::map<std::string, uint64_t> live_;             // channel -> live session
  std::map<std::string, std::string> channel_dev_;   // channel -> device (viewers' streams)
  std::map<std::string, Transport> channel_tr_;      // channel -> transport asked by the view that started it
  std::map<junction::sip::TxnId, uint64_t> bye_txn_; // our BYE / INFO in flight -> session (answers ignored)
  uint64_t next_id_ = 1;
};

}  // namespace gb::play
