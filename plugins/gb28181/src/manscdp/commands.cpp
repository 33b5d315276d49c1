// CommandCenter: first commit is the interface only (stub bodies); the logic follows.
#include "commands.hpp"

namespace junction::gb {

struct CommandCenter::Impl {
  DeviceLink& link;
  CenterConfig cfg;
};

namespace {
StartResult not_yet() { return StartResult{false, 0, "not implemented yet"}; }
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
bool parse_query_kind(std::string_view, QueryKind&) { return false; }
std::string_view sub_kind_name(SubKind k) { return k == SubKind::Catalog ? "Catalog" : "Alarm"; }
std::string_view outcome_name(Outcome) { return "?"; }

CommandCenter::CommandCenter(DeviceLink& link, CenterConfig cfg) : impl_(new Impl{link, cfg}) {}
CommandCenter::~CommandCenter() = default;
void CommandCenter::set_config(const CenterConfig& cfg) { impl_->cfg = cfg; }
StartResult CommandCenter::query(const std::string&, QueryKind, const QueryParams&, uint64_t) { return not_yet(); }
StartResult CommandCenter::ptz(const std::string&, const std::string&, const PtzCode&, uint64_t) { return not_yet(); }
StartResult CommandCenter::teleboot(const std::string&, uint64_t) { return not_yet(); }
StartResult CommandCenter::iframe(const std::string&, const std::string&, uint64_t) { return not_yet(); }
StartResult CommandCenter::guard(const std::string&, const std::string&, bool, uint64_t) { return not_yet(); }
StartResult CommandCenter::alarm_reset(const std::string&, const std::string&, int, const std::string&, uint64_t) {
  return not_yet();
}
StartResult CommandCenter::record(const std::string&, const std::string&, bool, uint64_t) { return not_yet(); }
StartResult CommandCenter::home_position(const std::string&, const std::string&, const HomePosition&, uint64_t) {
  return not_yet();
}
StartResult CommandCenter::config_basic(const std::string&, const std::string&, const BasicParam&, uint64_t) {
  return not_yet();
}
StartResult CommandCenter::config_snapshot(const std::string&, const std::string&, const SnapShotConfig&, uint64_t) {
  return not_yet();
}
StartResult CommandCenter::subscribe(const std::string&, SubKind, uint32_t, const QueryParams&, uint64_t) {
  return not_yet();
}
void CommandCenter::unsubscribe(const std::string&, SubKind) {}
nlohmann::json CommandCenter::subscriptions_json() const { return nlohmann::json::array(); }
BodyAnswer CommandCenter::on_body(const std::string&, const Body&) { return BodyAnswer{0, "not implemented yet"}; }
void CommandCenter::on_message_outcome(uint64_t, int) {}
void CommandCenter::on_subscribe_outcome(const std::string&, SubKind, int, uint32_t) {}
void CommandCenter::on_timer() {}
void CommandCenter::forget_device(const std::string&) {}
const DeviceCatalog* CommandCenter::catalog(const std::string&) const { return nullptr; }
nlohmann::json CommandCenter::catalog_json(const std::string&) const { return nlohmann::json::object(); }
nlohmann::json CommandCenter::catalog_tree(const std::string&) const { return nlohmann::json::object(); }
size_t CommandCenter::pending_count() const { return 0; }
nlohmann::json CommandCenter::stats_json() const { return nlohmann::json::object(); }
std::string CommandCenter::save() const { return "{\"v\":1}"; }
bool CommandCenter::restore(std::string_view, std::string& error) {
  error = "not implemented yet";
  return false;
}

}  // namespace junction::gb
