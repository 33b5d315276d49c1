// CommandCenter (commands.hpp): pending commands keyed by our MESSAGE id and by (device, SN),
// multi-MESSAGE aggregation, the catalog model, subscriptions and alarms. Decisions where the
// document is silent are in README.md next to this file.
#include "commands.hpp"

#include <algorithm>
#include <functional>
#include <set>
#include <utility>
#include <junction/util/text.hpp>

using junction::util::ascii_iequals;

namespace junction::gb {

using nlohmann::json;

namespace {

constexpr uint32_t kStateVersion = 1;
constexpr uint32_t kMaxSn = 0x7FFFFFFF;  // SN is an xs:integer >= 1; stay in int32 for old devices
constexpr uint64_t kSubRetryMs = 30000;  // a failed refresh is retried this often until it works

std::string trimmed(const char* s) {
  std::string_view v(s);
  while (!v.empty() && static_cast<unsigned char>(v.front()) <= ' ') v.remove_prefix(1);
  while (!v.empty() && static_cast<unsigned char>(v.back()) <= ' ') v.remove_suffix(1);
  return std::string(v);
}

bool has_element_children(pugi::xml_node n) {
  for (pugi::xml_node c = n.first_child(); c; c = c.next_sibling())
    if (c.type() == pugi::node_element) return true;
  return false;
}

// A MANSCDP element as JSON: a leaf is its text; a list (every child an <Item>) is an array; any
// other element is an object whose repeated children become arrays.
json to_json(pugi::xml_node n, int depth = 0) {
  if (!has_element_children(n) || depth > 40) return trimmed(n.child_value());
  bool all_items = true;
  for (pugi::xml_node c = n.first_child(); c; c = c.next_sibling())
    if (c.type() == pugi::node_element && std::string_view(c.name()) != "Item") all_items = false;
  if (all_items) {
    json a = json::array();
    for (pugi::xml_node c = n.child("Item"); c; c = c.next_sibling("Item")) a.push_back(to_json(c, depth + 1));
    return a;
  }
  json o = json::object();
  std::set<std::string> repeated;  // keys already turned into arrays by a repetition
  for (pugi::xml_node c = n.first_child(); c; c = c.next_sibling()) {
    if (c.type() != pugi::node_element) continue;
    json v = to_json(c, depth + 1);
    auto it = o.find(c.name());
    if (it == o.end()) {
      o[c.name()] = std::move(v);
    } else {
      if (repeated.insert(c.name()).second) {
        json prev = std::move(*it);
        *it = json::array({std::move(prev)});
      }
      it->push_back(std::move(v));
    }
  }
  return o;
}

// "yyyy-MM-ddTHH:mm:ss" (GB/T 28181 dateTime without zone); fractions tolerated.
bool is_gb_time(std::string_view t) {
  if (t.size() < 19) return false;
  static constexpr std::string_view pat = "dddd-dd-ddTdd:dd:dd";
  for (size_t i = 0; i < pat.size(); ++i) {
    if (pat[i] == 'd' ? !(t[i] >= '0' && t[i] <= '9') : t[i] != pat[i]) return false;
  }
  return t.size() == 19 || t[19] == '.';
}

bool valid_id(const std::string& id) { return !id.empty() && id.size() <= 64; }

// The last component of a 2022-style slash path ParentID ("a/b/c" -> "c").
std::string last_path_component(const std::string& s) {
  size_t p = s.find_last_of('/');
  return p == std::string::npos ? s : s.substr(p + 1);
}

}  // namespace

std::string_view query_kind_name(QueryKind k) {
  switch (k) {
    case QueryKind::Catalog: return "Catalog";
    case QueryKind::DeviceInfo: return "DeviceInfo";
    case QueryKind::DeviceStatus: return "DeviceStatus";
    case QueryKind::RecordInfo: return "RecordInfo";
    case QueryKind::ConfigDownload: return "ConfigDownload";
    case QueryKind::PresetQuery: return "PresetQuery";
    case QueryKind::Alarm: return "Alarm";
  }
  return "?";
}

bool parse_query_kind(std::string_view s, QueryKind& out) {
  for (QueryKind k : {QueryKind::Catalog, QueryKind::DeviceInfo, QueryKind::DeviceStatus, QueryKind::RecordInfo,
                      QueryKind::ConfigDownload, QueryKind::PresetQuery, QueryKind::Alarm}) {
    if (ascii_iequals(s, query_kind_name(k))) {
      out = k;
      return true;
    }
  }
  return false;
}

std::string_view sub_kind_name(SubKind k) { return k == SubKind::Catalog ? "Catalog" : "Alarm"; }

std::string_view outcome_name(Outcome o) {
  switch (o) {
    case Outcome::Ok: return "ok";
    case Outcome::Partial: return "partial";
    case Outcome::Timeout: return "timeout";
    case Outcome::DeviceError: return "device_error";
    case Outcome::Failed: return "failed";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------

namespace {

enum class PendType : uint8_t { Query = 0, ControlResp = 1, ControlNoResp = 2 };

struct Pending {
  uint64_t id = 0;  // our MESSAGE id (send_message's msg_id)
  uint64_t tag = 0;
  std::string device_id;
  std::string cmd;  // CmdType expected in the response (the one we sent)
  uint32_t sn = 0;
  PendType type = PendType::Query;
  QueryKind qkind = QueryKind::Catalog;
  bool msg_ok = false;  // our MESSAGE got its 2xx
  int sip_status = 0;
  uint64_t started_ms = 0, deadline_ms = 0;
  uint32_t sum_num = 0;
  bool have_sum = false;
  uint32_t responses = 0;
  json items = json::array();  // Catalog / RecordInfo items so far
  std::set<std::string> item_ids;  // Catalog: distinct DeviceIDs (rebuilt from items on restore)
  json data;                   // single-response queries and controls
  bool truncated = false;
};

struct Sub {
  std::string device_id;
  SubKind kind = SubKind::Catalog;
  uint64_t tag = 0;
  uint32_t asked_s = 0, granted_s = 0;
  std::string body;
  bool reported = false;    // the caller's result was delivered
  bool awaiting = false;    // a SUBSCRIBE is out, no outcome yet
  bool active = false;
  uint64_t await_deadline = 0, refresh_at = 0, expires_at = 0;
  int last_status = 0;
};

using SnKey = std::pair<std::string, uint32_t>;
using SubKey = std::pair<std::string, uint8_t>;

// SumNum (the size of a multi-MESSAGE answer): absent, or decimal digits that fit 32 bits.
bool sum_num_valid(const Body& body) {
  std::string sum = body.text("SumNum");
  if (sum.empty()) return true;
  if (sum.size() > 9) return false;
  for (char c : sum)
    if (c < '0' || c > '9') return false;
  return true;
}
bool read_sum_num(const Body& body, uint32_t* out) {
  std::string sum = body.text("SumNum");
  if (sum.empty() || !sum_num_valid(body)) return false;
  *out = static_cast<uint32_t>(std::strtoul(sum.c_str(), nullptr, 10));
  return true;
}
}  // namespace

struct CommandCenter::Impl {
  DeviceLink& link;
  CenterConfig cfg;
  uint32_t next_sn = 1;
  uint64_t next_id = 1;
  std::map<uint64_t, Pending> pending;
  std::map<SnKey, uint64_t> by_sn;
  std::map<std::string, size_t> per_device;
  std::map<std::string, DeviceCatalog> catalogs;
  std::map<SubKey, Sub> subs;
  std::map<std::string, uint64_t> stats;
  uint64_t armed_at = 0;

  Impl(DeviceLink& l, CenterConfig c) : link(l), cfg(c) {}

  void count(const char* name, uint64_t n = 1) { stats[name] += n; }
  void log(LogLevel lvl, const std::string& m) { link.log(lvl, "gb28181/manscdp: " + m); }

  uint32_t alloc_sn(const std::string& device) {
    for (uint32_t tries = 0; tries < 1000000; ++tries) {
      uint32_t sn = next_sn;
      next_sn = next_sn >= kMaxSn ? 1 : next_sn + 1;
      if (!by_sn.count({device, sn})) return sn;
    }
    return 0;
  }

  StartResult refuse(std::string error) {
    count("commands_refused");
    log(LogLevel::Warn, error);
    return StartResult{false, 0, std::move(error)};
  }

  // Checks the limits, allocates the SN and returns the Pending to fill (not yet inserted).
  StartResult start(const std::string& device, const std::string& target, Pending& p) {
    if (!valid_id(device)) return refuse("device id must be 1..64 characters");
    if (target.size() > 64) return refuse("target id longer than 64 characters");
    if (pending.size() >= cfg.max_pending)
      return refuse("pending table full (" + std::to_string(cfg.max_pending) + " commands)");
    auto pd = per_device.find(device);
    if (pd != per_device.end() && pd->second >= cfg.max_pending_per_device)
      return refuse("device " + device + " has " + std::to_string(pd->second) + " commands pending (limit)");
    p.sn = alloc_sn(device);
    if (p.sn == 0) return refuse("no free SN for device " + device);
    p.id = next_id++;
    p.device_id = device;
    p.started_ms = link.now_ms();
    return StartResult{true, p.sn, {}};
  }

  StartResult send(Pending&& p, const BodyBuilder& b, uint32_t timeout_ms) {
    std::string body = b.encode(link.device_charset(p.device_id));
    p.deadline_ms = p.started_ms + timeout_ms;
    uint64_t id = p.id;
    SnKey key{p.device_id, p.sn};
    std::string device = p.device_id, cmd = p.cmd;
    uint32_t sn = p.sn;
    bool is_query = p.type == PendType::Query;
    // Inserted before the send: a link may report the outcome synchronously.
    by_sn[key] = id;
    per_device[device]++;
    pending.emplace(id, std::move(p));
    std::string error;
    if (!link.send_message(device, body, id, error)) {
      auto it = pending.find(id);
      if (it != pending.end()) erase(it);
      count("commands_send_failed");
      if (error.empty()) error = "cannot send to device " + device;
      log(LogLevel::Warn, cmd + " to " + device + " not sent: " + error);
      return StartResult{false, 0, error};
    }
    count(is_query ? "queries" : "controls");
    rearm();
    return StartResult{true, sn, {}};
  }

  void erase(std::map<uint64_t, Pending>::iterator it) {
    by_sn.erase({it->second.device_id, it->second.sn});
    auto pd = per_device.find(it->second.device_id);
    if (pd != per_device.end() && --pd->second == 0) per_device.erase(pd);
    pending.erase(it);
  }

  // The result of a query that is ending: its items are moved out (the Pending goes next), not
  // copied (a 10 000-channel catalog: the copy and its frees were most of the last MESSAGE's time).
  json query_data(Pending& p) const {
    if (p.type == PendType::Query && (p.qkind == QueryKind::Catalog || p.qkind == QueryKind::RecordInfo)) {
      json items = std::move(p.items);
      if (p.qkind == QueryKind::RecordInfo) {
        auto key = [](const json& it, const char* f) -> std::string {
          if (it.is_object()) {
            auto v = it.find(f);
            if (v != it.end() && v->is_string()) return v->get<std::string>();
          }
          return {};
        };
        std::stable_sort(items.begin(), items.end(), [&](const json& a, const json& b) {
          std::string sa = key(a, "StartTime"), sb = key(b, "StartTime");
          if (sa != sb) return sa < sb;
          return key(a, "EndTime") < key(b, "EndTime");
        });
      }
      json d = {{"sum_num", p.sum_num}, {"received", static_cast<uint64_t>(items.size())}, {"items", std::move(items)}};
      if (p.truncated) d["truncated"] = true;
      if (p.data.is_object() && p.data.contains("name")) d["name"] = p.data["name"];
      return d;
    }
    return p.data.is_null() ? json::object() : p.data;
  }

  void finish(uint64_t id, Outcome o, std::string error) {
    auto it = pending.find(id);
    if (it == pending.end()) return;
    CommandResult r;
    r.tag = it->second.tag;
    r.device_id = it->second.device_id;
    r.cmd = it->second.cmd;
    r.sn = it->second.sn;
    r.outcome = o;
    r.sip_status = it->second.sip_status;
    r.error = std::move(error);
    r.data = query_data(it->second);
    erase(it);
    rearm();
    switch (o) {
      case Outcome::Ok: count("commands_ok"); break;
      case Outcome::Partial: count("commands_partial"); break;
      case Outcome::Timeout: count("commands_timeout"); break;
      case Outcome::DeviceError: count("commands_device_error"); break;
      case Outcome::Failed: count("commands_failed"); break;
    }
    if (o != Outcome::Ok)
      log(LogLevel::Info, r.cmd + " SN " + std::to_string(r.sn) + " to " + r.device_id + ": " +
                              std::string(outcome_name(o)) + (r.error.empty() ? "" : " (" + r.error + ")"));
    link.on_result(r);
  }

  void rearm() {
    uint64_t at = 0;
    auto consider = [&](uint64_t t) {
      if (t != 0 && (at == 0 || t < at)) at = t;
    };
    for (auto& [id, p] : pending) consider(p.deadline_ms);
    for (auto& [k, s] : subs) {
      if (s.awaiting) consider(s.await_deadline);
      else consider(s.refresh_at);
    }
    if (at == armed_at) return;
    armed_at = at;
    if (at == 0) link.cancel_timer();
    else link.arm_timer(at);
  }

  // --- catalog model
  Channel* upsert_channel(const std::string& device, pugi::xml_node item, const std::string& id, uint64_t now) {
    DeviceCatalog& cat = catalogs[device];
    auto it = cat.channels.find(id);
    if (it == cat.channels.end()) {
      if (cat.channels.size() >= cfg.max_channels_per_device) {
        count("catalog_channels_dropped");
        log(LogLevel::Warn, "catalog of " + device + " is at its limit of " +
                                std::to_string(cfg.max_channels_per_device) + " channels: " + id + " dropped");
        return nullptr;
      }
      it = cat.channels.emplace(id, Channel{}).first;
      it->second.id = id;
    }
    Channel& ch = it->second;
    // Fields merge: a partial item (an UPDATE with a few fields) keeps the others.
    for (pugi::xml_node c = item.first_child(); c; c = c.next_sibling()) {
      if (c.type() != pugi::node_element || std::string_view(c.name()) == "Event") continue;
      if (has_element_children(c)) {
        // Nested blocks (<Info>): kept as their JSON text.
        ch.fields[c.name()] = to_json(c).dump();
        continue;
      }
      ch.fields[c.name()] = trimmed(c.child_value());
    }
    auto f = [&](const char* k) -> std::string {
      auto v = ch.fields.find(k);
      return v == ch.fields.end() ? std::string() : v->second;
    };
    ch.name = f("Name");
    ch.parent_id = last_path_component(f("ParentID"));
    ch.civil_code = f("CivilCode");
    ch.business_group_id = f("BusinessGroupID");
    std::string st = f("Status");
    if (!st.empty()) ch.status = st;
    ch.updated_ms = now;
    cat.updated_ms = now;
    return &ch;
  }

  // One <Item> of a Catalog response or NOTIFY. Returns its id ("" when it has none).
  std::string apply_item(const std::string& device, pugi::xml_node item, uint64_t now) {
    std::string id = trimmed(item.child("DeviceID").child_value());
    if (id.empty() || id.size() > 64) {
      count("catalog_items_bad");
      log(LogLevel::Warn, "catalog item from " + device + " without a valid DeviceID ignored");
      return {};
    }
    std::string ev = trimmed(item.child("Event").child_value());
    DeviceCatalog& cat = catalogs[device];
    if (ev.empty() || ascii_iequals(ev, "ADD") || ascii_iequals(ev, "UPDATE")) {
      upsert_channel(device, item, id, now);
    } else if (ascii_iequals(ev, "DEL")) {
      cat.channels.erase(id);
      cat.updated_ms = now;
    } else if (ascii_iequals(ev, "ON") || ascii_iequals(ev, "OFF") || ascii_iequals(ev, "VLOST") || ascii_iequals(ev, "DEFECT")) {
      Channel* ch = upsert_channel(device, item, id, now);
      if (ch) {
        if (ascii_iequals(ev, "ON")) {
          ch->status = "ON";
          ch->vlost = ch->defect = false;
        } else if (ascii_iequals(ev, "OFF")) {
          ch->status = "OFF";
        } else if (ascii_iequals(ev, "VLOST")) {
          ch->vlost = true;
        } else {
          ch->defect = true;
        }
        ch->fields["Status"] = ch->status;
      }
    } else {
      count("catalog_events_unknown");
      log(LogLevel::Warn, "catalog event '" + ev.substr(0, 32) + "' for " + id + " from " + device + " ignored");
      return id;
    }
    if (!ev.empty()) {
      count("catalog_events");
      link.publish("gb/catalog/" + device, json{{"device", device}, {"channel", id}, {"event", ev}});
    }
    return id;
  }

  // --- bodies
  BodyAnswer on_response(const std::string& device, const Body& body);
  BodyAnswer on_catalog_items(const std::string& device, const Body& body, Pending* p, bool notify = false);
  BodyAnswer on_alarm(const std::string& device, const Body& body);

  // --- subscriptions
  bool send_sub(Sub& s, uint32_t expires, std::string& error) {
    s.awaiting = true;
    s.await_deadline = link.now_ms() + cfg.control_timeout_ms;
    if (!link.send_subscribe(s.device_id, s.kind, expires, s.body, error)) {
      s.awaiting = false;
      return false;
    }
    return true;
  }
  void sub_outcome(Sub& s, const SubKey& key, int status, uint32_t granted);
};

BodyAnswer CommandCenter::Impl::on_catalog_items(const std::string& device, const Body& body, Pending* p, bool notify) {
  uint64_t now = link.now_ms();
  pugi::xml_node list = body.root().child("DeviceList");
  size_t n = 0;
  for (pugi::xml_node item = list.child("Item"); item; item = item.next_sibling("Item")) {
    std::string id = apply_item(device, item, now);
    ++n;
    if (p && !id.empty() && !p->truncated) {
      if (p->item_ids.size() >= cfg.max_items_per_query) {
        p->truncated = true;
        count("query_items_truncated");
      } else if (p->item_ids.insert(id).second) {
        p->items.push_back(to_json(item));
      }
    }
  }
  if (!p && !notify) {
    count("catalog_unsolicited");
    log(LogLevel::Debug, "catalog set of " + std::to_string(n) + " items from " + device + " merged (no query pending)");
  }
  return BodyAnswer{200, {}};
}

BodyAnswer CommandCenter::Impl::on_alarm(const std::string& device, const Body& body) {
  pugi::xml_node r = body.root();
  auto t = [&](const char* k) { return trimmed(r.child(k).child_value()); };
  // "port" is the alarmed channel (the zone an intercom screen names: intercom-json reads
  // port/zone/source/device in that order), "source" the plugin that raised it.
  json ev = {{"source", "gb28181"},
             {"port", body.device_id()},
             {"device", device},
             {"channel", body.device_id()},
             {"sn", body.sn()},
             {"priority", t("AlarmPriority")},
             {"method", t("AlarmMethod")},
             {"time", t("AlarmTime")},
             {"description", t("AlarmDescription")}};
  pugi::xml_node info = r.child("Info");
  std::string type = trimmed(info.child("AlarmType").child_value());
  if (type.empty()) type = t("AlarmType");
  ev["type"] = type.empty() ? std::string("alarm") : type;
  std::string event_type = trimmed(info.child("AlarmTypeParam").child("EventType").child_value());
  if (!event_type.empty()) ev["event_type"] = event_type;
  for (auto [xml, key] : {std::pair{"Longitude", "longitude"}, {"Latitude", "latitude"}, {"AlarmInfo", "info"}}) {
    std::string v = t(xml);
    if (!v.empty()) ev[key] = v;
  }
  // intercom-json's alarm reader: "source"/"port" names the zone, "message" the text.
  ev["message"] = ev["description"].get<std::string>().empty() ? "GB28181 alarm from " + body.device_id()
                                                               : ev["description"].get<std::string>();
  count("alarms");
  link.publish("alarm/gb/" + device, ev);
  // The Response the document's flow wants (steps 3-4), Result OK, after our 200.
  BodyBuilder b(RootKind::Response, "Alarm", body.sn(), body.device_id());
  b.add("Result", "OK");
  std::string error;
  uint64_t id = next_id++;  // outcome of this MESSAGE is not waited for (no pending entry)
  if (!link.send_message(device, b.encode(link.device_charset(device)), id, error))
    log(LogLevel::Warn, "alarm Response to " + device + " not sent: " + error);
  log(LogLevel::Info, "alarm from " + device + " channel " + body.device_id() + " type " + ev["type"].get<std::string>());
  return BodyAnswer{200, {}};
}

BodyAnswer CommandCenter::Impl::on_response(const std::string& device, const Body& body) {
  if (!sum_num_valid(body)) return BodyAnswer{400, "SumNum '" + body.text("SumNum").substr(0, 16) + "' is not a number"};
  const std::string& ct = body.cmd_type();
  Pending* p = nullptr;
  if (body.has_sn()) {
    auto k = by_sn.find({device, body.sn()});
    if (k != by_sn.end()) {
      auto it = pending.find(k->second);
      if (it != pending.end()) p = &it->second;
    }
  }
  bool is_catalog_body = ascii_iequals(ct, "Catalog") && body.root().child("DeviceList");
  if (p && !ascii_iequals(ct, p->cmd)) {
    // The document's DeviceInfo / DeviceStatus samples say CmdType Catalog: accepted for the
    // query pending under that SN when the body has no DeviceList (so it is not a catalog set).
    bool tolerated = ascii_iequals(ct, "Catalog") && !is_catalog_body && p->type == PendType::Query &&
                     (p->qkind == QueryKind::DeviceInfo || p->qkind == QueryKind::DeviceStatus);
    if (tolerated) {
      count("tolerated_cmdtype");
    } else {
      log(LogLevel::Info, "Response " + ct + " SN " + std::to_string(body.sn()) + " from " + device +
                              " does not match the pending " + p->cmd + ": not taken as its answer");
      p = nullptr;
    }
  }
  // A device with no channels answers SumNum 0 and no DeviceList: still the catalog set.
  if (p && ascii_iequals(ct, "Catalog") && p->type == PendType::Query && p->qkind == QueryKind::Catalog) is_catalog_body = true;
  if (is_catalog_body) {
    if (p && !(p->type == PendType::Query && p->qkind == QueryKind::Catalog)) p = nullptr;
    BodyAnswer a = on_catalog_items(device, body, p);
    if (p) {
      uint64_t id = p->id;
      uint32_t sum = 0;
      if (read_sum_num(body, &sum)) {
        p->sum_num = sum;
        p->have_sum = true;
        catalogs[device].last_sum_num = p->sum_num;
      }
      p->responses++;
      uint64_t now = link.now_ms();
      p->deadline_ms = std::min(p->started_ms + cfg.query_max_ms, std::max(p->deadline_ms, now + cfg.query_idle_ms));
      if (p->truncated) finish(id, Outcome::Partial, "more than " + std::to_string(cfg.max_items_per_query) + " items");
      else if (p->have_sum && p->item_ids.size() >= p->sum_num) finish(id, Outcome::Ok, {});
      else rearm();
    }
    return a;
  }
  if (!p) {
    if (!body.has_sn()) return BodyAnswer{400, "Response " + ct + " without SN"};
    // A late answer (after its timeout) or one for another platform: acknowledged, dropped.
    count("responses_unmatched");
    log(LogLevel::Debug, "Response " + ct + " SN " + std::to_string(body.sn()) + " from " + device + " matches no pending command");
    return BodyAnswer{200, {}};
  }
  uint64_t id = p->id;
  p->responses++;
  if (p->type == PendType::Query && p->qkind == QueryKind::RecordInfo) {
    uint32_t sum = 0;
    if (read_sum_num(body, &sum)) {
      p->sum_num = sum;
      p->have_sum = true;
    }
    pugi::xml_node list = body.root().child("RecordList");
    for (pugi::xml_node item = list.child("Item"); item; item = item.next_sibling("Item")) {
      if (p->items.size() >= cfg.max_items_per_query) {
        p->truncated = true;
        break;
      }
      p->items.push_back(to_json(item));
    }
    if (p->data.is_null()) {
      std::string name = body.text("Name");
      if (!name.empty()) p->data = json{{"name", name}};
    }
    uint64_t now = link.now_ms();
    p->deadline_ms = std::min(p->started_ms + cfg.query_max_ms, std::max(p->deadline_ms, now + cfg.query_idle_ms));
    if (p->truncated) finish(id, Outcome::Partial, "more than " + std::to_string(cfg.max_items_per_query) + " items");
    else if (p->have_sum && p->items.size() >= p->sum_num) finish(id, Outcome::Ok, {});
    else rearm();
    return BodyAnswer{200, {}};
  }
  // A single-message answer: a query's fields or a control's Result.
  p->data = to_json(body.root());
  if (!p->data.is_object()) p->data = json::object();
  std::string result = body.text("Result");
  if (!result.empty() && !ascii_iequals(result, "OK")) {
    std::string reason = body.text("Reason");
    if (reason.empty()) reason = body.text("Info");
    finish(id, Outcome::DeviceError, "device answered Result " + result.substr(0, 32) + (reason.empty() ? "" : ": " + reason));
  } else if (p->type == PendType::ControlResp && result.empty()) {
    finish(id, Outcome::DeviceError, "Response without Result");
  } else {
    finish(id, Outcome::Ok, {});
  }
  return BodyAnswer{200, {}};
}

void CommandCenter::Impl::sub_outcome(Sub& s, const SubKey& key, int status, uint32_t granted) {
  uint64_t now = link.now_ms();
  s.awaiting = false;
  s.last_status = status;
  bool ok = status >= 200 && status < 300;
  if (ok) {
    s.active = true;
    s.granted_s = granted ? granted : s.asked_s;
    s.expires_at = now + uint64_t(s.granted_s) * 1000;
    // Refresh at half the granted time (RFC 6665 leaves it to us; never later than 32 s before the end).
    uint64_t half = uint64_t(s.granted_s) * 500;
    uint64_t early = s.granted_s > 64 ? uint64_t(s.granted_s) * 1000 - 32000 : half;
    s.refresh_at = now + std::min(half, early);
    count("subscriptions_ok");
  } else {
    count("subscriptions_failed");
    log(LogLevel::Warn, std::string(sub_kind_name(s.kind)) + " subscription of " + s.device_id + " failed with " +
                            std::to_string(status));
  }
  if (!s.reported) {
    s.reported = true;
    CommandResult r;
    r.tag = s.tag;
    r.device_id = s.device_id;
    r.cmd = "Subscribe:" + std::string(sub_kind_name(s.kind));
    r.sip_status = status;
    r.outcome = ok ? Outcome::Ok : (status == 408 ? Outcome::Timeout : Outcome::Failed);
    if (ok) r.data = json{{"expires", s.granted_s}};
    else r.error = "SUBSCRIBE answered " + std::to_string(status);
    bool erase_it = !ok;
    if (erase_it) subs.erase(key);
    link.on_result(r);
  } else if (!ok) {
    // A failed refresh: retried, the subscription is kept until unsubscribe().
    s.active = now < s.expires_at;
    s.refresh_at = now + kSubRetryMs;
  }
  rearm();
}

// ---------------------------------------------------------------------------------------------

CommandCenter::CommandCenter(DeviceLink& link, CenterConfig cfg) : impl_(new Impl(link, cfg)) {}
CommandCenter::~CommandCenter() = default;
void CommandCenter::set_config(const CenterConfig& cfg) { impl_->cfg = cfg; }

StartResult CommandCenter::query(const std::string& device, QueryKind kind, const QueryParams& q, uint64_t tag) {
  Impl& m = *impl_;
  if (kind == QueryKind::RecordInfo || (kind == QueryKind::Alarm && (!q.start_time.empty() || !q.end_time.empty()))) {
    if (!is_gb_time(q.start_time) || !is_gb_time(q.end_time))
      return m.refuse(std::string(query_kind_name(kind)) + " needs start_time and end_time as yyyy-MM-ddTHH:mm:ss");
  }
  if (kind == QueryKind::ConfigDownload && q.config_type.empty()) return m.refuse("ConfigDownload needs a config_type");
  Pending p;
  StartResult s = m.start(device, q.target_id, p);
  if (!s.ok) return s;
  p.tag = tag;
  p.type = PendType::Query;
  p.qkind = kind;
  p.cmd = std::string(query_kind_name(kind));
  const std::string& target = q.target_id.empty() ? device : q.target_id;
  BodyBuilder b(RootKind::Query, p.cmd, p.sn, target);
  switch (kind) {
    case QueryKind::RecordInfo:
      b.add("StartTime", q.start_time);
      b.add("EndTime", q.end_time);
      if (!q.file_path.empty()) b.add("FilePath", q.file_path);
      if (!q.address.empty()) b.add("Address", q.address);
      b.add("Secrecy", q.secrecy);
      b.add("Type", q.record_type.empty() ? std::string("all") : q.record_type);
      if (!q.recorder_id.empty()) b.add("RecorderID", q.recorder_id);
      break;
    case QueryKind::ConfigDownload: b.add("ConfigType", q.config_type); break;
    case QueryKind::Alarm:
      b.add("StartAlarmPriority", q.start_priority);
      b.add("EndAlarmPriority", q.end_priority);
      b.add("AlarmMethod", q.alarm_method);
      if (!q.alarm_type.empty()) b.add("AlarmType", q.alarm_type);
      if (!q.start_time.empty()) {
        b.add("StartAlarmTime", q.start_time);
        b.add("EndAlarmTime", q.end_time);
      }
      break;
    default: break;
  }
  return m.send(std::move(p), b, m.cfg.query_timeout_ms);
}

#define JN_GB_CONTROL_START(CMD, RESP)                                  \
  Impl& m = *impl_;                                                     \
  Pending p;                                                            \
  StartResult s = m.start(device, target, p);                           \
  if (!s.ok) return s;                                                  \
  p.tag = tag;                                                          \
  p.type = (RESP) ? PendType::ControlResp : PendType::ControlNoResp;    \
  p.cmd = CMD;                                                          \
  BodyBuilder b(RootKind::Control, p.cmd, p.sn, target.empty() ? device : target)

StartResult CommandCenter::ptz(const std::string& device, const std::string& target, const PtzCode& code, uint64_t tag) {
  JN_GB_CONTROL_START("DeviceControl", false);
  b.add("PTZCmd", code.hex());
  pugi::xml_node info = b.add("Info", "");
  b.add("ControlPriority", 5, info);
  return m.send(std::move(p), b, m.cfg.control_timeout_ms);
}

StartResult CommandCenter::teleboot(const std::string& device, uint64_t tag) {
  const std::string target;
  JN_GB_CONTROL_START("DeviceControl", false);
  b.add("TeleBoot", "Boot");
  return m.send(std::move(p), b, m.cfg.control_timeout_ms);
}

StartResult CommandCenter::iframe(const std::string& device, const std::string& target, uint64_t tag) {
  JN_GB_CONTROL_START("DeviceControl", false);
  b.add("IFameCmd", "Send");  // the standard's own spelling (A.2.3)
  return m.send(std::move(p), b, m.cfg.control_timeout_ms);
}

StartResult CommandCenter::guard(const std::string& device, const std::string& target, bool set, uint64_t tag) {
  JN_GB_CONTROL_START("DeviceControl", true);
  b.add("GuardCmd", set ? "SetGuard" : "ResetGuard");
  return m.send(std::move(p), b, m.cfg.control_timeout_ms);
}

StartResult CommandCenter::alarm_reset(const std::string& device, const std::string& target, int alarm_method,
                                       const std::string& alarm_type, uint64_t tag) {
  JN_GB_CONTROL_START("DeviceControl", true);
  b.add("AlarmCmd", "ResetAlarm");
  if (alarm_method != 0 || !alarm_type.empty()) {
    pugi::xml_node info = b.add("Info", "");
    if (alarm_method != 0) b.add("AlarmMethod", alarm_method, info);
    if (!alarm_type.empty()) b.add("AlarmType", alarm_type, info);
  }
  return m.send(std::move(p), b, m.cfg.control_timeout_ms);
}

StartResult CommandCenter::record(const std::string& device, const std::string& target, bool start, uint64_t tag) {
  JN_GB_CONTROL_START("DeviceControl", true);
  b.add("RecordCmd", start ? "Record" : "StopRecord");
  return m.send(std::move(p), b, m.cfg.control_timeout_ms);
}

StartResult CommandCenter::home_position(const std::string& device, const std::string& target, const HomePosition& hp,
                                         uint64_t tag) {
  if (hp.enabled && (hp.preset_index < 1 || hp.preset_index > 255))
    return impl_->refuse("home position preset_index must be 1..255");
  if (hp.reset_time_s < 0) return impl_->refuse("home position reset_time must be >= 0");
  JN_GB_CONTROL_START("DeviceControl", true);
  pugi::xml_node h = b.add("HomePosition", "");
  b.add("Enabled", hp.enabled ? 1 : 0, h);
  if (hp.enabled) {
    b.add("ResetTime", hp.reset_time_s, h);
    b.add("PresetIndex", hp.preset_index, h);
  }
  return m.send(std::move(p), b, m.cfg.control_timeout_ms);
}

StartResult CommandCenter::config_basic(const std::string& device, const std::string& target, const BasicParam& bp,
                                        uint64_t tag) {
  if (bp.name.empty() && bp.expiration == 0 && bp.heartbeat_interval == 0 && bp.heartbeat_count == 0)
    return impl_->refuse("BasicParam: nothing to set");
  if (bp.expiration < 0 || bp.heartbeat_interval < 0 || bp.heartbeat_count < 0)
    return impl_->refuse("BasicParam: negative value");
  JN_GB_CONTROL_START("DeviceConfig", true);
  pugi::xml_node bpn = b.add("BasicParam", "");
  if (!bp.name.empty()) b.add("Name", bp.name, bpn);
  if (bp.expiration) b.add("Expiration", bp.expiration, bpn);
  if (bp.heartbeat_interval) b.add("HeartBeatInterval", bp.heartbeat_interval, bpn);
  if (bp.heartbeat_count) b.add("HeartBeatCount", bp.heartbeat_count, bpn);
  return m.send(std::move(p), b, m.cfg.control_timeout_ms);
}

StartResult CommandCenter::config_snapshot(const std::string& device, const std::string& target, const SnapShotConfig& sc,
                                           uint64_t tag) {
  if (sc.snap_num < 1 || sc.snap_num > 10) return impl_->refuse("SnapShotConfig: snap_num must be 1..10");
  if (sc.interval_s < 1) return impl_->refuse("SnapShotConfig: interval must be >= 1 s");
  if (sc.upload_url.rfind("http://", 0) != 0 && sc.upload_url.rfind("https://", 0) != 0)
    return impl_->refuse("SnapShotConfig: upload_url must be an http(s) URL");
  if (sc.session_id.size() < 32 || sc.session_id.size() > 128 ||
      !std::all_of(sc.session_id.begin(), sc.session_id.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
      }))
    return impl_->refuse("SnapShotConfig: session_id must be 32..128 letters, digits or '-'");
  JN_GB_CONTROL_START("DeviceConfig", true);
  pugi::xml_node n = b.add("SnapShotConfig", "");
  b.add("SnapNum", sc.snap_num, n);
  b.add("Interval", sc.interval_s, n);
  b.add("UploadURL", sc.upload_url, n);
  b.add("SessionID", sc.session_id, n);
  return m.send(std::move(p), b, m.cfg.control_timeout_ms);
}

#undef JN_GB_CONTROL_START

// --- subscriptions

StartResult CommandCenter::subscribe(const std::string& device, SubKind kind, uint32_t expires_s, const QueryParams& q,
                                     uint64_t tag) {
  Impl& m = *impl_;
  if (!valid_id(device)) return m.refuse("device id must be 1..64 characters");
  SubKey key{device, static_cast<uint8_t>(kind)};
  auto it = m.subs.find(key);
  if (it != m.subs.end() && !it->second.reported)
    return m.refuse(std::string(sub_kind_name(kind)) + " subscription of " + device + " is already being set up");
  Sub s;
  s.device_id = device;
  s.kind = kind;
  s.tag = tag;
  s.asked_s = expires_s ? expires_s : m.cfg.subscribe_expires_s;
  uint32_t sn = m.alloc_sn(device);
  BodyBuilder b(RootKind::Query, sub_kind_name(kind), sn, q.target_id.empty() ? device : q.target_id);
  if (kind == SubKind::Alarm) {
    b.add("StartAlarmPriority", q.start_priority);
    b.add("EndAlarmPriority", q.end_priority);
    b.add("AlarmMethod", q.alarm_method);
    if (!q.alarm_type.empty()) b.add("AlarmType", q.alarm_type);
  }
  if (is_gb_time(q.start_time) && is_gb_time(q.end_time)) {
    b.add(kind == SubKind::Alarm ? "StartAlarmTime" : "StartTime", q.start_time);
    b.add(kind == SubKind::Alarm ? "EndAlarmTime" : "EndTime", q.end_time);
  }
  s.body = b.encode(m.link.device_charset(device));
  auto& slot = m.subs[key];
  slot = std::move(s);
  std::string error;
  if (!m.send_sub(slot, slot.asked_s, error)) {
    m.subs.erase(key);
    if (error.empty()) error = "cannot send SUBSCRIBE to " + device;
    return m.refuse(error);
  }
  m.count("subscribes");
  m.rearm();
  return StartResult{true, sn, {}};
}

void CommandCenter::unsubscribe(const std::string& device, SubKind kind) {
  Impl& m = *impl_;
  auto it = m.subs.find({device, static_cast<uint8_t>(kind)});
  if (it == m.subs.end()) return;
  Sub s = std::move(it->second);
  m.subs.erase(it);
  std::string error;
  if (!m.link.send_subscribe(device, kind, 0, s.body, error))
    m.log(LogLevel::Info, "unsubscribe of " + device + " not sent: " + error);
  m.count("unsubscribes");
  if (!s.reported) {
    CommandResult r;
    r.tag = s.tag;
    r.device_id = device;
    r.cmd = "Subscribe:" + std::string(sub_kind_name(kind));
    r.outcome = Outcome::Failed;
    r.error = "unsubscribed before the device answered";
    m.link.on_result(r);
  }
  m.rearm();
}

nlohmann::json CommandCenter::subscriptions_json() const {
  json a = json::array();
  for (auto& [k, s] : impl_->subs)
    a.push_back({{"device", s.device_id},
                 {"kind", sub_kind_name(s.kind)},
                 {"active", s.active},
                 {"awaiting", s.awaiting},
                 {"expires_s", s.granted_s},
                 {"expires_at_ms", s.expires_at},
                 {"refresh_at_ms", s.refresh_at},
                 {"last_status", s.last_status}});
  return a;
}

void CommandCenter::on_subscribe_outcome(const std::string& device, SubKind kind, int status, uint32_t granted) {
  Impl& m = *impl_;
  SubKey key{device, static_cast<uint8_t>(kind)};
  auto it = m.subs.find(key);
  if (it == m.subs.end() || status < 200) return;
  m.sub_outcome(it->second, key, status, granted);
}

// --- from the plugin

BodyAnswer CommandCenter::on_body(const std::string& device, const Body& body) {
  Impl& m = *impl_;
  m.count("bodies");
  if (!valid_id(device)) return BodyAnswer{400, "sender id must be 1..64 characters"};
  const std::string& ct = body.cmd_type();
  BodyAnswer a{0, {}};
  switch (body.kind()) {
    case RootKind::Response:
      a = m.on_response(device, body);
      break;
    case RootKind::Notify:
      if (ascii_iequals(ct, "Alarm")) {
        a = m.on_alarm(device, body);
      } else if (ascii_iequals(ct, "Catalog")) {
        // Subscription NOTIFY (or a MESSAGE Notify): events applied, the set never wipes.
        m.count("catalog_notifies");
        a = m.on_catalog_items(device, body, nullptr, true);
      } else if (ascii_iequals(ct, "UploadSnapShotFinished")) {
        json files = json::array();
        for (pugi::xml_node f = body.root().child("SnapShotList").first_child(); f; f = f.next_sibling())
          if (f.type() == pugi::node_element && files.size() < 1024) files.push_back(trimmed(f.child_value()));
        m.count("snapshot_finished");
        m.link.publish("gb/snapshot/" + device,
                       json{{"device", device}, {"channel", body.device_id()}, {"session_id", body.text("SessionID")},
                            {"files", files}});
        a = BodyAnswer{200, {}};
      } else {
        a = BodyAnswer{0, {}};  // Keepalive, MediaStatus, MobilePosition...: the plugin's
      }
      break;
    case RootKind::Control:
      // The document's DeviceControl answer sample has a <Control> root with <Result>: taken as
      // the Response when it matches a pending command.
      if (body.root().child("Result") && body.has_sn() && m.by_sn.count({device, body.sn()})) {
        m.count("tolerated_control_root");
        a = m.on_response(device, body);
      } else {
        a = BodyAnswer{0, {}};
      }
      break;
    case RootKind::Query:
      a = BodyAnswer{0, {}};
      break;
  }
  if (a.status >= 400) {
    m.count("bodies_refused");
    m.log(LogLevel::Warn, std::string(root_kind_name(body.kind())) + " " + ct + " from " + device + " refused: " + a.reason);
  }
  return a;
}

void CommandCenter::on_message_outcome(uint64_t msg_id, int status) {
  Impl& m = *impl_;
  auto it = m.pending.find(msg_id);
  if (it == m.pending.end() || status < 200) return;
  Pending& p = it->second;
  p.sip_status = status;
  if (status < 300) {
    p.msg_ok = true;
    if (p.type == PendType::ControlNoResp) m.finish(msg_id, Outcome::Ok, {});
    return;
  }
  // The device refused our MESSAGE; if some answers already arrived (a MESSAGE retransmission
  // race), they are what we have.
  if (p.responses > 0) {
    m.finish(msg_id, Outcome::Partial, "MESSAGE answered " + std::to_string(status) + " after some responses");
    m.rearm();
    return;
  }
  m.finish(msg_id, Outcome::Failed, "MESSAGE answered " + std::to_string(status));
  m.rearm();
}

void CommandCenter::on_timer() {
  Impl& m = *impl_;
  m.armed_at = 0;
  uint64_t now = m.link.now_ms();
  std::vector<uint64_t> due;
  for (auto& [id, p] : m.pending)
    if (p.deadline_ms <= now) due.push_back(id);
  for (uint64_t id : due) {
    auto it = m.pending.find(id);
    if (it == m.pending.end()) continue;
    Pending& p = it->second;
    bool some = p.responses > 0;
    std::string why = p.type == PendType::ControlNoResp
                          ? "no SIP answer to the MESSAGE"
                          : (some ? "timed out with " + std::to_string(p.type == PendType::Query ? p.items.size() : 0) +
                                        " of " + std::to_string(p.sum_num) + " items"
                                  : (p.msg_ok ? "device accepted the MESSAGE but sent no response"
                                              : "no answer from the device"));
    m.finish(id, some ? Outcome::Partial : Outcome::Timeout, why);
  }
  std::vector<SubKey> subs_due;
  for (auto& [k, s] : m.subs)
    if ((s.awaiting && s.await_deadline <= now) || (!s.awaiting && s.refresh_at && s.refresh_at <= now))
      subs_due.push_back(k);
  for (auto& k : subs_due) {
    auto it = m.subs.find(k);
    if (it == m.subs.end()) continue;
    Sub& s = it->second;
    if (s.awaiting) {
      m.sub_outcome(s, k, 408, 0);
      continue;
    }
    std::string error;
    s.refresh_at = 0;
    if (!m.send_sub(s, s.asked_s, error)) {
      m.log(LogLevel::Info, std::string(sub_kind_name(s.kind)) + " refresh to " + s.device_id + " not sent: " + error);
      s.refresh_at = now + kSubRetryMs;
      s.active = now < s.expires_at;
    } else {
      m.count("subscription_refreshes");
    }
  }
  m.rearm();
}

void CommandCenter::forget_device(const std::string& device) {
  Impl& m = *impl_;
  std::vector<uint64_t> ids;
  for (auto& [id, p] : m.pending)
    if (p.device_id == device) ids.push_back(id);
  for (uint64_t id : ids) m.finish(id, Outcome::Failed, "device removed");
  m.catalogs.erase(device);
  for (uint8_t k = 0; k < 2; ++k) {
    auto it = m.subs.find({device, k});
    if (it == m.subs.end()) continue;
    Sub s = std::move(it->second);
    m.subs.erase(it);
    if (!s.reported) {
      CommandResult r;
      r.tag = s.tag;
      r.device_id = device;
      r.cmd = "Subscribe:" + std::string(sub_kind_name(s.kind));
      r.outcome = Outcome::Failed;
      r.error = "device removed";
      m.link.on_result(r);
    }
  }
  m.rearm();
}

// --- catalog model

const DeviceCatalog* CommandCenter::catalog(const std::string& device) const {
  auto it = impl_->catalogs.find(device);
  return it == impl_->catalogs.end() ? nullptr : &it->second;
}

namespace {
json channel_json(const Channel& c) {
  json f = json::object();
  for (auto& [k, v] : c.fields) f[k] = v;
  return json{{"id", c.id},           {"name", c.name},     {"parent_id", c.parent_id},
              {"civil_code", c.civil_code}, {"business_group_id", c.business_group_id},
              {"status", c.status},   {"vlost", c.vlost},   {"defect", c.defect},
              {"updated_ms", c.updated_ms}, {"fields", f}};
}

// The type code of a 20-digit GB id (digits 11-13): 215 business group, 216 virtual organisation,
// 200 a platform, 111-130 front-end devices, 131-199 channels.
std::string type_code(const std::string& id) { return id.size() == 20 ? id.substr(10, 3) : std::string(); }

bool is_civil_code(const std::string& id) {
  return !id.empty() && id.size() <= 8 && id.size() % 2 == 0 &&
         std::all_of(id.begin(), id.end(), [](char c) { return c >= '0' && c <= '9'; });
}
}  // namespace

nlohmann::json CommandCenter::catalog_json(const std::string& device) const {
  json a = json::array();
  auto it = impl_->catalogs.find(device);
  if (it != impl_->catalogs.end())
    for (auto& [id, c] : it->second.channels) a.push_back(channel_json(c));
  json o = {{"device", device}, {"channels", a}};
  if (it != impl_->catalogs.end()) {
    o["sum_num"] = it->second.last_sum_num;
    o["updated_ms"] = it->second.updated_ms;
  }
  return o;
}

nlohmann::json CommandCenter::catalog_tree(const std::string& device) const {
  json root = {{"id", device}, {"kind", "device"}, {"children", json::array()}};
  auto cit = impl_->catalogs.find(device);
  if (cit == impl_->catalogs.end()) return root;
  const auto& chans = cit->second.channels;
  // Nodes: the catalog's entries plus synthetic civil-code prefixes; parent of each.
  std::map<std::string, std::string> parent, kind, name;
  std::map<std::string, const Channel*> chan_of;
  auto ensure_civil = [&](const std::string& code) {
    // "34020000" -> 34, 3402, 340200, 34020000 each under the previous one.
    std::string prev;
    for (size_t len = 2; len <= code.size(); len += 2) {
      std::string c = code.substr(0, len);
      if (!kind.count(c)) {
        kind[c] = "civil";
        parent[c] = prev;
      }
      prev = c;
    }
  };
  for (auto& [id, c] : chans) {
    chan_of[id] = &c;
    name[id] = c.name;
    std::string tc = type_code(id);
    kind[id] = is_civil_code(id) ? "civil" : tc == "215" ? "business_group" : tc == "216" ? "virtual_org" : "channel";
  }
  for (auto& [id, c] : chans) {
    std::string p;
    if (!c.parent_id.empty() && c.parent_id != id && chans.count(c.parent_id)) p = c.parent_id;
    else if (!c.business_group_id.empty() && c.business_group_id != id && chans.count(c.business_group_id))
      p = c.business_group_id;
    else if (is_civil_code(id) && id.size() > 2) {
      ensure_civil(id.substr(0, id.size() - 2));
      p = id.substr(0, id.size() - 2);
    } else if (is_civil_code(c.civil_code) && c.civil_code != id) {
      ensure_civil(c.civil_code);
      p = c.civil_code;
    }
    parent[id] = p;
  }
  std::map<std::string, std::vector<std::string>> children;
  for (auto& [id, p] : parent) children[p].push_back(id);
  std::set<std::string> seen;
  // Iterative build (a hostile catalog can be deep); a node in a ParentID cycle never reached
  // from the root is attached to the root.
  std::function<json(const std::string&, int)> build = [&](const std::string& id, int depth) -> json {
    seen.insert(id);
    json n = {{"id", id}, {"kind", kind[id]}};
    if (!name[id].empty()) n["name"] = name[id];
    auto ch = chan_of.find(id);
    if (ch != chan_of.end() && !ch->second->status.empty()) n["status"] = ch->second->status;
    json kids = json::array();
    if (depth < 64) {
      for (auto& c : children[id])
        if (!seen.count(c)) kids.push_back(build(c, depth + 1));
    }
    if (!kids.empty()) n["children"] = std::move(kids);
    return n;
  };
  for (auto& c : children[""]) root["children"].push_back(build(c, 1));
  for (auto& [id, p] : parent)
    if (!seen.count(id)) root["children"].push_back(build(id, 1));
  return root;
}

size_t CommandCenter::pending_count() const { return impl_->pending.size(); }

nlohmann::json CommandCenter::stats_json() const {
  json o = json::object();
  for (auto& [k, v] : impl_->stats) o[k] = v;
  o["pending"] = impl_->pending.size();
  o["subscriptions"] = impl_->subs.size();
  return o;
}

// --- hot reload

std::string CommandCenter::save() const {
  const Impl& m = *impl_;
  json pend = json::array();
  for (auto& [id, p] : m.pending)
    pend.push_back({{"id", p.id},         {"tag", p.tag},           {"device", p.device_id}, {"cmd", p.cmd},
                    {"sn", p.sn},         {"type", static_cast<int>(p.type)}, {"qkind", static_cast<int>(p.qkind)},
                    {"msg_ok", p.msg_ok}, {"sip_status", p.sip_status}, {"started_ms", p.started_ms},
                    {"deadline_ms", p.deadline_ms}, {"sum_num", p.sum_num}, {"have_sum", p.have_sum},
                    {"responses", p.responses}, {"items", p.items}, {"data", p.data}, {"truncated", p.truncated}});
  json cats = json::object();
  for (auto& [dev, c] : m.catalogs) {
    json ch = json::array();
    for (auto& [id, x] : c.channels) {
      json f = json::object();
      for (auto& [k, v] : x.fields) f[k] = v;
      ch.push_back({{"id", x.id}, {"status", x.status}, {"vlost", x.vlost}, {"defect", x.defect},
                    {"updated_ms", x.updated_ms}, {"fields", f}});
    }
    cats[dev] = {{"last_sum_num", c.last_sum_num}, {"updated_ms", c.updated_ms}, {"channels", ch}};
  }
  json subs = json::array();
  for (auto& [k, s] : m.subs)
    subs.push_back({{"device", s.device_id}, {"kind", static_cast<int>(s.kind)}, {"tag", s.tag}, {"asked_s", s.asked_s},
                    {"granted_s", s.granted_s}, {"body", s.body}, {"reported", s.reported}, {"awaiting", s.awaiting},
                    {"active", s.active}, {"await_deadline", s.await_deadline}, {"refresh_at", s.refresh_at},
                    {"expires_at", s.expires_at}, {"last_status", s.last_status}});
  json stats = json::object();
  for (auto& [k, v] : m.stats) stats[k] = v;
  json o = {{"v", kStateVersion}, {"next_sn", m.next_sn}, {"next_id", m.next_id}, {"pending", pend},
            {"catalogs", cats},   {"subs", subs},         {"stats", stats}};
  // CBOR-free JSON on purpose: the plugin embeds it in its own state object. Bodies from devices
  // may hold invalid UTF-8 only as U+FFFD (decode() replaced it), so dump() cannot throw.
  return o.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool CommandCenter::restore(std::string_view bytes, std::string& error) {
  json o = json::parse(bytes, nullptr, false);
  if (o.is_discarded() || !o.is_object()) {
    error = "manscdp state: not a JSON object";
    return false;
  }
  auto v = o.find("v");
  if (v == o.end() || !v->is_number_unsigned() || v->get<uint32_t>() != kStateVersion) {
    error = "manscdp state: version is not " + std::to_string(kStateVersion);
    return false;
  }
  auto fresh = std::make_unique<Impl>(impl_->link, impl_->cfg);
  Impl& m = *fresh;
  // A missing section is an empty one (an older writer may not have had it).
  static const json kEmptyArray = json::array(), kEmptyObject = json::object();
  auto section = [&](const char* k, const json& empty) -> const json& {
    auto it = o.find(k);
    return it == o.end() ? empty : *it;
  };
  try {
    m.next_sn = o.value("next_sn", 1u);
    if (m.next_sn == 0 || m.next_sn > kMaxSn) m.next_sn = 1;
    m.next_id = o.value("next_id", uint64_t{1});
    for (auto& j : section("pending", kEmptyArray)) {
      Pending p;
      p.id = j.at("id").get<uint64_t>();
      p.tag = j.at("tag").get<uint64_t>();
      p.device_id = j.at("device").get<std::string>();
      p.cmd = j.at("cmd").get<std::string>();
      p.sn = j.at("sn").get<uint32_t>();
      int t = j.at("type").get<int>(), qk = j.at("qkind").get<int>();
      if (t < 0 || t > 2 || qk < 0 || qk > 6) throw std::runtime_error("bad pending type");
      p.type = static_cast<PendType>(t);
      p.qkind = static_cast<QueryKind>(qk);
      p.msg_ok = j.at("msg_ok").get<bool>();
      p.sip_status = j.at("sip_status").get<int>();
      p.started_ms = j.at("started_ms").get<uint64_t>();
      p.deadline_ms = j.at("deadline_ms").get<uint64_t>();
      p.sum_num = j.at("sum_num").get<uint32_t>();
      p.have_sum = j.at("have_sum").get<bool>();
      p.responses = j.at("responses").get<uint32_t>();
      p.items = j.at("items");
      if (!p.items.is_array()) throw std::runtime_error("items not an array");
      p.data = j.at("data");
      p.truncated = j.value("truncated", false);
      if (p.qkind == QueryKind::Catalog && p.type == PendType::Query)
        for (auto& it : p.items)
          if (it.is_object() && it.contains("DeviceID") && it["DeviceID"].is_string())
            p.item_ids.insert(it["DeviceID"].get<std::string>());
      if (p.id >= m.next_id) m.next_id = p.id + 1;
      m.by_sn[{p.device_id, p.sn}] = p.id;
      m.per_device[p.device_id]++;
      m.pending.emplace(p.id, std::move(p));
    }
    for (auto& [dev, c] : section("catalogs", kEmptyObject).items()) {
      DeviceCatalog& cat = m.catalogs[dev];
      cat.last_sum_num = c.at("last_sum_num").get<uint32_t>();
      cat.updated_ms = c.at("updated_ms").get<uint64_t>();
      for (auto& x : c.at("channels")) {
        Channel ch;
        ch.id = x.at("id").get<std::string>();
        ch.status = x.at("status").get<std::string>();
        ch.vlost = x.at("vlost").get<bool>();
        ch.defect = x.at("defect").get<bool>();
        ch.updated_ms = x.at("updated_ms").get<uint64_t>();
        for (auto& [k, val] : x.at("fields").items()) ch.fields[k] = val.get<std::string>();
        auto f = [&](const char* k) {
          auto it = ch.fields.find(k);
          return it == ch.fields.end() ? std::string() : it->second;
        };
        ch.name = f("Name");
        ch.parent_id = last_path_component(f("ParentID"));
        ch.civil_code = f("CivilCode");
        ch.business_group_id = f("BusinessGroupID");
        std::string id = ch.id;
        cat.channels[id] = std::move(ch);
      }
    }
    for (auto& j : section("subs", kEmptyArray)) {
      Sub s;
      s.device_id = j.at("device").get<std::string>();
      int k = j.at("kind").get<int>();
      if (k < 0 || k > 1) throw std::runtime_error("bad subscription kind");
      s.kind = static_cast<SubKind>(k);
      s.tag = j.at("tag").get<uint64_t>();
      s.asked_s = j.at("asked_s").get<uint32_t>();
      s.granted_s = j.at("granted_s").get<uint32_t>();
      s.body = j.at("body").get<std::string>();
      s.reported = j.at("reported").get<bool>();
      s.awaiting = j.at("awaiting").get<bool>();
      s.active = j.at("active").get<bool>();
      s.await_deadline = j.at("await_deadline").get<uint64_t>();
      s.refresh_at = j.at("refresh_at").get<uint64_t>();
      s.expires_at = j.at("expires_at").get<uint64_t>();
      s.last_status = j.at("last_status").get<int>();
      m.subs[{s.device_id, static_cast<uint8_t>(s.kind)}] = std::move(s);
    }
    if (o.contains("stats"))
      for (auto& [k, val] : o["stats"].items())
        if (val.is_number_unsigned()) m.stats[k] = val.get<uint64_t>();
  } catch (const std::exception& e) {
    error = std::string("manscdp state: ") + e.what();
    return false;
  }
  impl_ = std::move(fresh);
  impl_->armed_at = 0;
  impl_->rearm();
  return true;
}

}  // namespace junction::gb
