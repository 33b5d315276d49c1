// Admin verbs (POST /api/v1/plugins/gb28181/cmd/VERB, `junction ctl cmd gb28181 VERB JSON`):
// device provisioning in the core's store and the live view of devices. README.md lists them.
#include "ids.hpp"
#include "liveness.hpp"
#include "plugin.hpp"

#include <junction/util/addr.hpp>

namespace gb {

namespace sip = junction::sip;
using nlohmann::json;
using junction::sdk::to_sv;

void GbPlugin::load_devices() {
  size_t bad = 0;
  for (auto& [key, value] : host().kv_scan("dev/")) {
    DeviceConf c;
    std::string err;
    json j = json::parse(value, nullptr, false);
    if (!device_conf_from_json(j, c, err)) {
      ++bad;
      host().warn("gb28181: store record " + key + " skipped: " + err);
      continue;
    }
    reg_.put(c);
  }
  if (bad) host().warn("gb28181: " + std::to_string(bad) + " bad device record(s) in the store");
}

bool GbPlugin::store_device(const DeviceConf& c) {
  if (host().kv_put("dev/" + c.id, device_conf_to_json(c, true).dump()) != JN_OK) {
    host().warn("gb28181: device " + c.id + " could not be stored");
    return false;
  }
  return true;
}

json GbPlugin::device_view(const Device& d, bool full) {
  json j = device_conf_to_json(d.conf, false);
  const DeviceLive& l = d.live;
  uint64_t now = host().now_ms();
  j["online"] = l.registered;
  if (l.registered || l.registrations) {
    j["address"] = junction::util::format_addr(l.flow.peer);
    j["transport"] = std::string(sip::proto_name(l.flow.proto));
  }
  if (l.registered) j["expires_in_s"] = l.expires_at > now ? (l.expires_at - now) / 1000 : 0;
  if (l.last_keepalive) j["last_keepalive_ms_ago"] = now - l.last_keepalive;
  else j["last_keepalive_ms_ago"] = nullptr;
  if (!l.offline_reason.empty()) j["offline_reason"] = l.offline_reason;
  if (full) {
    j["contact"] = l.contact;
    j["registrations"] = l.registrations;
    j["keepalives"] = l.keepalives;
    if (l.registered) j["registered_ms_ago"] = now - l.registered_at;
    if (l.flow.proto == sip::Proto::Tcp) j["connection"] = l.flow.conn;
    Due due = offline_due(conf_, l);
    if (due.at != UINT64_MAX) j["offline_in_ms"] = due.at > now ? due.at - now : 0;
  }
  const junction::gb::DeviceCatalog* cat = cc_->catalog(d.conf.id);
  j["channels"] = cat ? cat->channels.size() : 0;
  return j;
}

void GbPlugin::on_admin(const jn_admin_request& req) {
  std::string verb(to_sv(req.verb));
  std::string_view text = to_sv(req.body);
  json body = text.empty() ? json::object() : json::parse(text, nullptr, false);
  if (body.is_discarded() || !body.is_object()) return reply(req, 400, {{"error", "the body must be a JSON object"}});
  auto id_of = [&](std::string& id) {
    if (!body.contains("id") || !body["id"].is_string()) return false;
    id = body["id"].get<std::string>();
    return true;
  };
  std::string id, err;
  if (admin_command(verb, body, req) || snapshot_admin(verb, body, req) || play_admin(verb, body, req) || broadcast_admin(verb, body, req)) return;
  if (verb == "add" && body.contains("devices")) {
    // Bulk provisioning: {"devices": [{...}, ...]}; each is checked as a single add.
    if (!body["devices"].is_array()) return reply(req, 400, {{"error", "devices must be an array of device objects"}});
    size_t added = 0;
    json errors = json::array();
    for (auto& e : body["devices"]) {
      DeviceConf c;
      if (!device_conf_from_json(e, c, err)) {
        errors.push_back({{"device", e.is_object() ? e.value("id", std::string()) : std::string()}, {"error", err}});
        continue;
      }
      if (reg_.find(c.id)) {
        errors.push_back({{"device", c.id}, {"error", "exists"}});
        continue;
      }
      if (reg_.size() >= conf_.max_devices) {
        errors.push_back({{"device", c.id}, {"error", "max_devices reached"}});
        continue;
      }
      c.auto_admitted = false;
      if (!store_device(c)) {
        errors.push_back({{"device", c.id}, {"error", "the store refused the device"}});
        continue;
      }
      reg_.put(c);
      ++added;
    }
    host().info("gb28181: " + std::to_string(added) + " device(s) added");
    update_gauges();
    return reply(req, errors.empty() ? 201 : 207, {{"added", added}, {"errors", errors}});
  }
  if (verb == "add") {
    DeviceConf c;
    if (!device_conf_from_json(body, c, err)) return reply(req, 400, {{"error", err}});
    if (reg_.find(c.id)) return reply(req, 409, {{"error", "device " + c.id + " exists (use update)"}});
    if (reg_.size() >= conf_.max_devices) return reply(req, 507, {{"error", "max_devices reached"}});
    c.auto_admitted = false;
    if (!store_device(c)) return reply(req, 500, {{"error", "the store refused the device"}});
    Device& d = reg_.put(c);
    host().info("gb28181: device " + c.id + " added");
    update_gauges();
    return reply(req, 201, device_view(d, true));
  }
  if (verb == "update") {
    if (!id_of(id)) return reply(req, 400, {{"error", "id (string) is required"}});
    Device* d = reg_.find(id);
    if (!d) return reply(req, 404, {{"error", "no device " + id}});
    DeviceConf c = d->conf;
    if (!device_conf_from_json(body, c, err, true)) return reply(req, 400, {{"error", err}});
    c.auto_admitted = false;  // an operator took it over
    if (!store_device(c)) return reply(req, 500, {{"error", "the store refused the device"}});
    d->conf = c;
    host().info("gb28181: device " + id + " updated");
    return reply(req, 200, device_view(*d, true));
  }
  if (verb == "delete") {
    if (!id_of(id)) return reply(req, 400, {{"error", "id (string) is required"}});
    Device* d = reg_.find(id);
    if (!d) return reply(req, 404, {{"error", "no device " + id}});
    if (d->live.registered) offline(*d, "deleted");
    cc_->forget_device(id);
    std::erase_if(subs_, [&](const auto& kv) { return kv.second.device == id; });
    host().kv_del("dev/" + id);
    reg_.erase(id);
    host().info("gb28181: device " + id + " deleted");
    update_gauges();
    return reply(req, 200, {{"deleted", id}});
  }
  if (verb == "show") {
    if (!id_of(id)) return reply(req, 400, {{"error", "id (string) is required"}});
    Device* d = reg_.find(id);
    if (!d) return reply(req, 404, {{"error", "no device " + id}});
    return reply(req, 200, device_view(*d, true));
  }
  if (verb == "list") {
    // {"online": true|false} filters; offset/limit page through a large registry (sorted by ID).
    std::vector<const Device*> all;
    bool filter = body.contains("online") && body["online"].is_boolean();
    bool want = filter && body["online"].get<bool>();
    reg_.for_each([&](Device& d) {
      if (!filter || d.live.registered == want) all.push_back(&d);
    });
    std::sort(all.begin(), all.end(), [](const Device* a, const Device* b) { return a->conf.id < b->conf.id; });
    size_t offset = body.value("offset", size_t(0)), limit = body.value("limit", size_t(1000));
    json a = json::array();
    for (size_t i = offset; i < all.size() && a.size() < limit; ++i) a.push_back(device_view(*all[i], false));
    return reply(req, 200, {{"total", all.size()}, {"devices", a}});
  }
  if (verb == "list-devices") {
    // What `junction ctl devices` shows: id, type (the ID's type code), online, peer.
    std::vector<const Device*> all;
    reg_.for_each([&](Device& d) { all.push_back(&d); });
    std::sort(all.begin(), all.end(), [](const Device* a, const Device* b) { return a->conf.id < b->conf.id; });
    json a = json::array();
    for (const Device* d : all) {
      json e = {{"id", d->conf.id}, {"type", std::string(type_code(d->conf.id))}, {"online", d->live.registered}};
      if (d->live.registered) e["peer"] = junction::util::format_addr(d->live.flow.peer);
      a.push_back(std::move(e));
    }
    return reply(req, 200, {{"devices", a}});
  }
  if (verb == "stats") {
    auto& k = stack_->counters();
    auto [buckets, chain] = reg_.shape();
    return reply(req, 200, {{"provisioned", reg_.size()},
                            {"registry_buckets", buckets},
                            {"registry_longest_chain", chain},
                            {"registered", reg_.registered()},
                            {"online", reg_.registered()},
                            {"keepalives", keepalives_},
                            {"keepalives_refused", keepalive_refused_},
                            {"offline_events", offline_events_},
                            {"transactions", stack_->transactions().size()},
                            {"rx_requests", k.rx_requests},
                            {"rx_bad", k.rx_bad},
                            {"pending_commands", cc_->pending_count()},
                            {"subscriptions", subs_.size()},
                            {"commands", cc_->stats_json()}});
  }
  if (verb == "redirects") {
    json loads = json::array();
    auto l = redirect_->loads(host().now_ms());
    for (size_t i = 0; i < l.size(); ++i)
      loads.push_back({{"server", conf_.redirect.servers[i].id}, {"address", conf_.redirect.servers[i].address}, {"devices", l[i]}});
    return reply(req, 200, {{"enabled", conf_.redirect.enabled}, {"policy", conf_.redirect.policy}, {"servers", loads}});
  }
  reply(req, 404, {{"error", "unknown command " + verb + " (add, update, delete, show, list, list-devices, stats, snapshots, snapshot, redirects, query, ptz, fi, preset, cruise, scan, guard, alarm_reset, record, home, teleboot, iframe, config, subscribe, unsubscribe, subscriptions, channels)"}});
}

}  // namespace gb
