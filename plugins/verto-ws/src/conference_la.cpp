// verto-ws conferences: the LiveArray / pvtData / layout codec and the parser of what clients send
// on conference channels. Pure functions of the model (no host): the unit tests and the fuzz
// target use them as they are.
#include "conference.hpp"

#include <cstdio>

namespace verto::ws::la {

std::string member_id(uint32_t id) {
  char b[16];
  std::snprintf(b, sizeof b, "%04u", id);  // mod_conference's "0077"
  return b;
}

static bool has_floor(const ConfRoom& r, const ConfMember& m) { return r.floor == m.id; }

json status(const ConfRoom& r, const ConfMember& m) {
  bool floor = has_floor(r, m), vfloor = r.video_floor() == m.id;
  json audio = {{"muted", m.muted}, {"deaf", m.deaf}, {"onHold", m.hold}, {"talking", m.talking}, {"floor", floor}, {"energyScore", m.energy}};
  json video = false;
  if (!m.video_codec.empty())
    video = {{"visible", vfloor}, {"noRecover", false}, {"avatarPresented", false}, {"mediaFlow", "sendRecv"}, {"muted", false},
             {"floor", vfloor}, {"reservationID", nullptr}, {"roleID", nullptr}, {"videoLayerID", vfloor ? 0 : -1}, {"canvasID", 0},
             {"watchingCanvasID", 0}, {"order", 0}};
  // mod_conference's summary line: ACTIVE / TALKING / FLOOR / MUTE ... (with video: "FLOOR VIDEO (FLOOR)")
  std::string old = m.hold ? "HOLD" : m.muted ? "MUTE" : m.talking ? "TALKING" : "ACTIVE";
  if (floor) old = m.talking ? "TALKING (FLOOR)" : "FLOOR";
  if (!m.video_codec.empty()) old += vfloor ? " VIDEO (FLOOR)" : " VIDEO";
  return json{{"audio", audio}, {"video", video}, {"oldStatus", old}, {"isModerator", m.moderator}};
}

json member_array(const ConfRoom& r, const ConfMember& m) {
  return json::array({member_id(m.id), m.cid_number, m.cid_name, m.codec, status(r, m).dump(), json::object(), nullptr});
}

json member_object(const ConfRoom& r, const ConfMember& m, const std::string& node_uuid) {
  return json{{"memberID", std::to_string(m.id)}, {"cidNumber", m.cid_number}, {"cidName", m.cid_name}, {"codec", m.codec},
              {"status", status(r, m)}, {"email", ""}, {"node_uuid", node_uuid}, {"active", m.talking}, {"uuid", m.key}};
}

json boot_obj(const ConfRoom& r) {
  json data = json::array();
  for (uint32_t id : r.order)
    if (auto it = r.members.find(id); it != r.members.end()) data.push_back(json::array({it->second.key, member_array(r, it->second)}));
  return json{{"action", "bootObj"}, {"name", r.name}, {"wireSerno", -1}, {"data", data}};
}

json boot_obj_objects(const ConfRoom& r, const std::string& node_uuid) {
  json data = json::array();
  for (uint32_t id : r.order)
    if (auto it = r.members.find(id); it != r.members.end())
      data.push_back(json::array({it->second.key, member_object(r, it->second, node_uuid)}));
  return json{{"action", "bootObj"}, {"name", r.name}, {"wireSerno", -1}, {"data", data}};
}

json change(const ConfRoom& r, const ConfMember& m, const char* action, int64_t serno) {
  json j = {{"action", action}, {"name", r.name}, {"hashKey", m.key}, {"wireSerno", serno}, {"data", member_array(r, m)}};
  if (std::string(action) == "add") {
    int64_t idx = 0;
    for (uint32_t id : r.order) {
      if (id == m.id) break;
      ++idx;
    }
    j["arrIndex"] = idx;
  }
  return j;
}

json pvt_data(const ConfRoom& r, const std::string& callid, uint32_t member, bool moderator, bool join) {
  json p = {{"callID", callid},
            {"action", join ? "conference-liveArray-join" : "conference-liveArray-part"},
            {"laChannel", r.la()},
            {"laName", r.name},
            {"role", moderator ? "moderator" : "participant"},
            {"chatID", "conf+" + r.name + "@" + r.domain},
            {"conferenceMemberID", member ? std::to_string(member) : ""},
            {"canvasCount", 1},
            {"chatChannel", r.chat()},
            {"infoChannel", r.info()}};
  if (moderator) p["modChannel"] = r.mod();  // moderators only
  return p;
}

json layout_info(const ConfRoom& r) {
  // One canvas, the floor holder full screen (video is forwarded, not composed: README).
  json layer = {{"x", 0}, {"y", 0}, {"scale", 360}, {"hscale", 360}, {"zoom", 0}, {"border", 0}, {"floor", 1}, {"overlap", 0},
                {"screenWidth", 1280}, {"screenHeight", 720}, {"xPOS", 0}, {"yPOS", 0}};
  return json{{"contentType", "layout-info"},
              {"canvasInfo",
               {{"canvasID", 0}, {"totalLayers", 1}, {"layersUsed", r.video_floor() ? 1 : 0}, {"layoutFloorID", 0}, {"layoutName", "1x1"},
                {"canvasLayouts", json::array({layer})}, {"scale", 360}}}};
}

static bool name_ok(const std::string& s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')) return false;
  return true;
}

bool room_name(const std::string& conference, const std::string& domain, std::string& name, std::string& dom) {
  if (!name_ok(domain, 48)) return false;
  const std::string suffix = "-" + domain;
  name = conference.size() > suffix.size() && conference.compare(conference.size() - suffix.size(), suffix.size(), suffix) == 0 ? conference
                                                                                                                                 : conference + suffix;
  dom = domain;
  return name_ok(conference, 48) && name.size() <= 97;
}

bool parse_channel(const std::string& channel, std::string& kind, std::string& room, std::string& domain) {
  static const char* const kinds[] = {"liveArray", "mod", "chat", "info"};
  for (const char* k : kinds) {
    std::string prefix = std::string("conference-") + k + ".";
    if (channel.compare(0, prefix.size(), prefix) != 0) continue;
    std::string rest = channel.substr(prefix.size());
    size_t at = rest.rfind('@');
    if (at == std::string::npos) return false;
    room = rest.substr(0, at);
    domain = rest.substr(at + 1);
    kind = k;
    return name_ok(room, 97) && name_ok(domain, 48);
  }
  return false;
}

static uint32_t member_of(const json& v) {
  // verto_confman.js sends the member id as a number or a string ("77", "0077")
  if (v.is_number_unsigned() && v.get<uint64_t>() < UINT32_MAX) return static_cast<uint32_t>(v.get<uint64_t>());
  if (v.is_number_integer() && v.get<int64_t>() > 0 && v.get<int64_t>() < UINT32_MAX) return static_cast<uint32_t>(v.get<int64_t>());
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (s.empty() || s.size() > 9) return 0;
    uint32_t n = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return 0;
      n = n * 10 + static_cast<uint32_t>(c - '0');
    }
    return n;
  }
  return 0;
}

Command parse_command(const std::string& kind, const json& data) {
  Command c;
  if (!data.is_object()) {
    c.kind = Command::Invalid;
    c.why = "data must be an object";
    return c;
  }
  if (kind == "liveArray") {
    auto la = data.find("liveArray");
    if (la == data.end() || !la->is_object() || la->value("command", json()) != "bootstrap") {
      c.kind = Command::Invalid;
      c.why = "liveArray.command must be bootstrap";
      return c;
    }
    c.kind = Command::Bootstrap;
    return c;
  }
  if (kind == "mod") {
    static const char* const known[] = {"mute", "unmute", "tmute", "deaf", "undeaf", "kick", "vid-floor", "lock", "unlock"};
    auto cmd = data.find("command");
    if (data.value("application", json("conf-control")) != "conf-control" || cmd == data.end() || !cmd->is_string()) {
      c.kind = Command::Invalid;
      c.why = "conf-control needs a command";
      return c;
    }
    c.command = cmd->get<std::string>();
    bool ok = false;
    for (const char* k : known) ok = ok || c.command == k;
    if (!ok) {
      c.kind = Command::Invalid;
      c.why = "unknown command " + verto::printable(c.command);
      return c;
    }
    if (auto id = data.find("id"); id != data.end()) c.member = member_of(*id);
    bool needs_member = c.command != "lock" && c.command != "unlock";
    if (needs_member && !c.member) {
      c.kind = Command::Invalid;
      c.why = c.command + " needs a member id";
      return c;
    }
    if (auto v = data.find("value"); v != data.end() && (v->is_string() || v->is_number())) c.value = v->is_string() ? v->get<std::string>() : v->dump();
    c.kind = Command::Mod;
    return c;
  }
  if (kind == "chat") {
    auto msg = data.find("message");
    if (msg == data.end() || !msg->is_string() || msg->get_ref<const std::string&>().empty() || msg->get_ref<const std::string&>().size() > 4096) {
      c.kind = Command::Invalid;
      c.why = "chat needs a message (1 to 4096 bytes)";
      return c;
    }
    c.kind = Command::Chat;
    c.message = msg->get<std::string>();
    return c;
  }
  c.kind = Command::Invalid;
  c.why = "nothing is sent on conference-" + kind;
  return c;
}

}  // namespace verto::ws::la
