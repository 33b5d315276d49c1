// Admin verbs of the device commands (queries, controls, subscriptions, the catalog): each starts
// a CommandCenter command and the admin reply waits for its result (DeviceLink::on_result), or
// answers at once when it cannot start. README.md documents the bodies.
#include "plugin.hpp"

namespace gb {

namespace mc = junction::gb;
using nlohmann::json;

namespace {
std::string s(const json& b, const char* k, std::string dflt = {}) {
  return b.contains(k) && b[k].is_string() ? b[k].get<std::string>() : dflt;
}
int64_t n(const json& b, const char* k, int64_t dflt = 0) {
  return b.contains(k) && b[k].is_number_integer() ? b[k].get<int64_t>() : dflt;
}
bool flag(const json& b, const char* k, bool dflt) { return b.contains(k) && b[k].is_boolean() ? b[k].get<bool>() : dflt; }
uint8_t u8(int64_t v) { return uint8_t(std::clamp<int64_t>(v, 0, 255)); }
int sign(int64_t v) { return v > 0 ? 1 : v < 0 ? -1 : 0; }
}  // namespace

void GbPlugin::started(const jn_admin_request& req, uint64_t tag, const mc::StartResult& r, const std::string& device) {
  if (r.ok) return;  // the reply waits for on_result
  auto it = admin_waiting_.find(tag);
  if (it == admin_waiting_.end()) return;  // already answered (the result came at once)
  admin_waiting_.erase(it);
  bool busy = r.error.find("pending") != std::string::npos || r.error.find("busy") != std::string::npos;
  reply(req, busy ? 503 : 400, {{"device", device}, {"error", r.error}});
}

void GbPlugin::on_result(const mc::CommandResult& r) {
  if (in_body_) {
    deferred_.push_back(r);
    return;
  }
  deliver(r);
}

void GbPlugin::deliver(const mc::CommandResult& r) {
  if (r.outcome == mc::Outcome::Timeout || r.outcome == mc::Outcome::Partial) host().counter_add("gb_query_timeouts_total");
  auto it = admin_waiting_.find(r.tag);
  if (it == admin_waiting_.end()) {
    host().info("gb28181: " + r.cmd + " for " + r.device_id + " ended " + std::string(mc::outcome_name(r.outcome)) +
                " after its admin request was gone");
    return;
  }
  jn_handle h = it->second;
  admin_waiting_.erase(it);
  int status = r.outcome == mc::Outcome::Ok ? 200
               : (r.outcome == mc::Outcome::Partial || r.outcome == mc::Outcome::Timeout) ? 504
                                                                                          : 502;
  json body = {{"device", r.device_id}, {"cmd", r.cmd}, {"sn", r.sn}, {"outcome", std::string(mc::outcome_name(r.outcome))},
               {"sip_status", r.sip_status}, {"data", r.data}};
  if (!r.error.empty()) body["error"] = r.error;
  if (host().admin_reply(h, status, body.dump(-1, ' ', false, json::error_handler_t::replace)) != JN_OK)
    host().info("gb28181: " + r.cmd + " for " + r.device_id + " ended " + std::string(mc::outcome_name(r.outcome)) +
                " after its admin request was gone");
}

bool GbPlugin::admin_command(const std::string& verb, const json& b, const jn_admin_request& req) {
  static const char* kVerbs[] = {"query", "ptz", "fi", "preset", "cruise", "scan", "guard", "alarm_reset", "record",
                                 "home", "teleboot", "iframe", "config", "subscribe", "unsubscribe", "channels",
                                 "subscriptions"};
  bool known = false;
  for (const char* v : kVerbs) known = known || verb == v;
  if (!known) return false;
  if (verb == "subscriptions") {
    reply(req, 200, {{"subscriptions", cc_->subscriptions_json()}});
    return true;
  }
  std::string dev = s(b, "id");
  Device* d = reg_.find(dev);
  if (dev.empty()) {
    reply(req, 400, {{"error", "id (the device's GB code) is required"}});
    return true;
  }
  if (!d) {
    reply(req, 404, {{"error", "no device " + dev}});
    return true;
  }
  if (verb == "channels") {
    reply(req, 200, flag(b, "tree", false) ? cc_->catalog_tree(dev) : cc_->catalog_json(dev));
    return true;
  }
  if (verb == "unsubscribe") {
    mc::SubKind k = s(b, "kind", "Catalog") == "Alarm" ? mc::SubKind::Alarm : mc::SubKind::Catalog;
    cc_->unsubscribe(dev, k);
    reply(req, 200, {{"device", dev}, {"unsubscribed", std::string(mc::sub_kind_name(k))}});
    return true;
  }
  if (!d->live.registered) {
    reply(req, 409, {{"error", "device " + dev + " is offline"}});
    return true;
  }
  std::string target = s(b, "target");
  uint64_t tag = next_tag_++;
  admin_waiting_[tag] = req.reply;
  mc::StartResult r;
  if (verb == "query") {
    mc::QueryKind k;
    if (!mc::parse_query_kind(s(b, "type"), k)) {
      admin_waiting_.erase(tag);
      reply(req, 400, {{"error", "type must be Catalog, DeviceInfo, DeviceStatus, RecordInfo, ConfigDownload, PresetQuery or Alarm"}});
      return true;
    }
    mc::QueryParams p;
    p.target_id = target;
    p.start_time = s(b, "start_time");
    p.end_time = s(b, "end_time");
    p.record_type = s(b, "record_type", "all");
    p.file_path = s(b, "file_path");
    p.address = s(b, "address");
    p.recorder_id = s(b, "recorder_id");
    p.secrecy = int(n(b, "secrecy"));
    p.config_type = s(b, "config_type", "BasicParam");
    p.start_priority = int(n(b, "start_priority"));
    p.end_priority = int(n(b, "end_priority"));
    p.alarm_method = int(n(b, "alarm_method"));
    p.alarm_type = s(b, "alarm_type");
    host().counter_add("gb_queries_total", 1, "type=\"" + std::string(mc::query_kind_name(k)) + "\"");
    r = cc_->query(dev, k, p, tag);
  } else if (verb == "ptz") {
    mc::PtzCode code;
    std::string err;
    if (b.contains("code")) {
      if (!mc::parse_ptz(s(b, "code"), code, err)) {
        admin_waiting_.erase(tag);
        reply(req, 400, {{"error", "code: " + err}});
        return true;
      }
    } else if (flag(b, "stop", false)) {
      code = mc::ptz_stop();
    } else {
      mc::PtzMove mv;
      mv.pan = sign(n(b, "pan"));
      mv.tilt = sign(n(b, "tilt"));
      mv.zoom = sign(n(b, "zoom"));
      int64_t speed = n(b, "speed", 128);
      mv.pan_speed = u8(n(b, "pan_speed", speed));
      mv.tilt_speed = u8(n(b, "tilt_speed", speed));
      mv.zoom_speed = uint8_t(std::clamp<int64_t>(n(b, "zoom_speed", 8), 0, 15));
      code = mc::ptz_move(mv);
    }
    r = cc_->ptz(dev, target, code, tag);
  } else if (verb == "fi") {
    r = cc_->ptz(dev, target, mc::ptz_fi(sign(n(b, "iris")), sign(n(b, "focus")), u8(n(b, "iris_speed", 128)), u8(n(b, "focus_speed", 128))),
                 tag);
  } else if (verb == "preset") {
    std::string op = s(b, "op", "call");
    mc::PresetOp o = op == "set" ? mc::PresetOp::Set : op == "delete" ? mc::PresetOp::Delete : mc::PresetOp::Call;
    int64_t idx = n(b, "index", 0);
    if ((op != "set" && op != "call" && op != "delete") || idx < 1 || idx > 255) {
      admin_waiting_.erase(tag);
      reply(req, 400, {{"error", "op must be set, call or delete and index 1..255"}});
      return true;
    }
    r = cc_->ptz(dev, target, mc::ptz_preset(o, u8(idx)), tag);
  } else if (verb == "cruise") {
    std::string op = s(b, "op", "start");
    mc::CruiseOp o = op == "add" ? mc::CruiseOp::AddPoint : op == "delete" ? mc::CruiseOp::DeletePoint
                     : op == "speed" ? mc::CruiseOp::Speed : op == "dwell" ? mc::CruiseOp::DwellTime : mc::CruiseOp::Start;
    r = cc_->ptz(dev, target, mc::ptz_cruise(o, u8(n(b, "group", 1)), uint16_t(std::clamp<int64_t>(n(b, "value"), 0, 4095))), tag);
  } else if (verb == "scan") {
    std::string op = s(b, "op", "start");
    mc::ScanOp o = op == "left" ? mc::ScanOp::SetLeft : op == "right" ? mc::ScanOp::SetRight : op == "speed" ? mc::ScanOp::Speed
                                                                                                           : mc::ScanOp::Start;
    r = cc_->ptz(dev, target, mc::ptz_scan(o, u8(n(b, "group", 1)), uint16_t(std::clamp<int64_t>(n(b, "value"), 0, 4095))), tag);
  } else if (verb == "guard") {
    r = cc_->guard(dev, target, flag(b, "set", true), tag);
  } else if (verb == "alarm_reset") {
    r = cc_->alarm_reset(dev, target, int(n(b, "alarm_method")), s(b, "alarm_type"), tag);
  } else if (verb == "record") {
    r = cc_->record(dev, target, flag(b, "start", true), tag);
  } else if (verb == "home") {
    mc::HomePosition hp;
    hp.enabled = flag(b, "enabled", true);
    hp.reset_time_s = int(n(b, "reset_time_s", 60));
    hp.preset_index = int(n(b, "preset", 1));
    r = cc_->home_position(dev, target, hp, tag);
  } else if (verb == "teleboot") {
    r = cc_->teleboot(dev, tag);
  } else if (verb == "iframe") {
    r = cc_->iframe(dev, target, tag);
  } else if (verb == "config") {
    std::string type = s(b, "type", "BasicParam");
    if (type == "SnapShotConfig") {
      mc::SnapShotConfig sc;
      sc.snap_num = int(n(b, "snap_num", 1));
      sc.interval_s = int(n(b, "interval_s", 1));
      sc.upload_url = s(b, "upload_url");
      sc.session_id = s(b, "session_id");
      std::string err;
      if (!open_snapshot_session(dev, sc, err)) {
        admin_waiting_.erase(tag);
        reply(req, 400, {{"error", err}});
        return true;
      }
      r = cc_->config_snapshot(dev, target, sc, tag);
    } else {
      mc::BasicParam bp;
      bp.name = s(b, "name");
      bp.expiration = int(n(b, "expiration"));
      bp.heartbeat_interval = int(n(b, "heartbeat_interval"));
      bp.heartbeat_count = int(n(b, "heartbeat_count"));
      r = cc_->config_basic(dev, target, bp, tag);
    }
  } else if (verb == "subscribe") {
    mc::SubKind k = s(b, "kind", "Catalog") == "Alarm" ? mc::SubKind::Alarm : mc::SubKind::Catalog;
    mc::QueryParams p;
    p.target_id = target;
    p.start_time = s(b, "start_time");
    p.end_time = s(b, "end_time");
    r = cc_->subscribe(dev, k, uint32_t(std::clamp<int64_t>(n(b, "expires_s"), 0, 86400)), p, tag);
  }
  started(req, tag, r, dev);
  return true;
}

}  // namespace gb
