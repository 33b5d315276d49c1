// One device stream, many viewers (play on demand): a refcount per channel. The first viewer
// starts the stream (INVITE), a viewer joining a live stream asks for a keyframe (the IFrame
// DeviceControl), the last viewer leaving stops it after a grace period, an RTP timeout stops it
// and restarts it with an exponential backoff (or ends the viewers' calls), the device's BYE
// (断流) releases everything. Pure logic on a caller's clock: every event returns the actions the
// plugin carries out (INVITE, BYE, IFrame, end calls), tick(now) returns what became due.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace gb::play {

struct ViewerConf {
  uint32_t grace_ms = 10000;            // last viewer gone -> BYE this much later (a quick re-join keeps the stream)
  bool restart_on_timeout = true;       // RTP timeout with viewers: re-INVITE (false: end the viewers' calls)
  uint32_t backoff_initial_ms = 1000;   // first restart delay; doubles per failed attempt
  uint32_t backoff_max_ms = 30000;
  uint32_t restart_attempts = 5;        // failed starts in a row before the viewers are ended (0 = forever)
};

enum class StreamState { Starting, Live, Grace, Waiting };  // Waiting: a restart's backoff
const char* state_name(StreamState s);

enum class ActionType {
  Start,            // INVITE the device for the channel
  Stop,             // BYE the device's dialog
  RequestKeyframe,  // IFrame DeviceControl (a viewer joined a live stream)
  EndViewers,       // end these viewers' calls (reason given)
};
struct Action {
  ActionType type;
  std::string channel;
  std::vector<std::string> viewers;  // EndViewers: whose calls
  std::string reason;
};

struct ChannelStream {
  StreamState state = StreamState::Starting;
  std::set<std::string> viewers;
  uint64_t deadline = 0;   // Grace / Waiting: when it falls due
  uint32_t attempts = 0;   // failed starts / timeouts since the last keyframe
  uint64_t restarts = 0;   // total restarts (stats)
};

class Viewers {
 public:
  explicit Viewers(ViewerConf c) : conf_(c) {}
  void set_conf(const ViewerConf& c) { conf_ = c; }

  std::vector<Action> join(const std::string& channel, const std::string& viewer, uint64_t now);
  std::vector<Action> leave(const std::string& channel, const std::string& viewer, uint64_t now);
  std::vector<Action> started(const std::string& channel, uint64_t now);  // the device's 200 (ACK sent)
  void first_keyframe(const std::string& channel);                        // the stream works: backoff resets
  std::vector<Action> start_failed(const std::string& channel, const std::string& reason, uint64_t now);
  std::vector<Action> rtp_timeout(const std::string& channel, uint64_t now);
  std::vector<Action> device_bye(const std::string& channel);
  std::vector<Action> tick(uint64_t now);
  uint64_t next_deadline() const;  // UINT64_MAX: nothing pending

  const ChannelStream* find(const std::string& channel) const;
  const std::map<std::string, ChannelStream>& all() const { return streams_; }
  uint32_t backoff_ms(uint32_t attempts) const;

  // Hot reload: the whole table (deadlines are on the host's monotonic clock, which a reload keeps).
  nlohmann::json to_json() const;
  bool from_json(const nlohmann::json& j, std::string& error);

 private:
  std::vector<Action> failed(const std::string& channel, ChannelStream& s, const std::string& reason, uint64_t now);
  ViewerConf conf_;
  std::map<std::string, ChannelStream> streams_;
};

}  // namespace gb::play
