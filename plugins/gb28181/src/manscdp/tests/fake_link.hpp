// A DeviceLink for the unit tests and fuzz_gb28181_commands: records every send, event, log and
// result; a settable clock and the one timer (fire() runs on_timer when the clock passes it).
#pragma once

#include "commands.hpp"

#include <string>
#include <vector>

namespace junction::gb::test {

struct SentMessage {
  std::string device;
  std::string body;
  uint64_t id = 0;
};
struct SentSubscribe {
  std::string device;
  SubKind kind;
  uint32_t expires;
  std::string body;
};

class FakeLink : public DeviceLink {
 public:
  uint64_t now = 1000000;
  uint64_t timer_at = 0;  // 0 = not armed
  bool refuse_send = false;
  Charset charset = Charset::Gb2312;
  std::vector<SentMessage> messages;
  std::vector<SentSubscribe> subscribes;
  std::vector<std::pair<std::string, nlohmann::json>> events;
  std::vector<CommandResult> results;
  std::vector<std::string> logs;
  CommandCenter* center = nullptr;

  bool send_message(const std::string& device, const std::string& body, uint64_t id, std::string& error) override {
    if (refuse_send) {
      error = "device " + device + " is offline";
      return false;
    }
    messages.push_back({device, body, id});
    return true;
  }
  bool send_subscribe(const std::string& device, SubKind kind, uint32_t expires, const std::string& body,
                      std::string& error) override {
    if (refuse_send) {
      error = "device " + device + " is offline";
      return false;
    }
    subscribes.push_back({device, kind, expires, body});
    return true;
  }
  Charset device_charset(const std::string&) override { return charset; }
  void publish(const std::string& topic, const nlohmann::json& payload) override { events.emplace_back(topic, payload); }
  uint64_t now_ms() override { return now; }
  void arm_timer(uint64_t at) override { timer_at = at; }
  void cancel_timer() override { timer_at = 0; }
  void log(LogLevel, std::string_view m) override { logs.emplace_back(m); }
  void on_result(const CommandResult& r) override { results.push_back(r); }

  // Advances the clock to t and fires the timer when it is due (as the plugin's host would).
  void advance_to(uint64_t t) {
    now = t;
    while (center && timer_at != 0 && timer_at <= now) {
      timer_at = 0;
      center->on_timer();
    }
  }
  void advance(uint64_t ms) { advance_to(now + ms); }
};

}  // namespace junction::gb::test
