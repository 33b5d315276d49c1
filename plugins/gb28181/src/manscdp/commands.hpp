// Device commands of the GB/T 28181 platform on top of MANSCDP bodies: queries (with SN
// allocation, a bounded pending table and multi-MESSAGE aggregation), controls (PTZ/FI codes with
// their checksum, presets, cruise, scan, guard, alarm reset, record, TeleBoot, IFrame, home
// position, DeviceConfig), the per-device catalog model, catalog/alarm subscriptions, alarms.
//
// The plugin owns one CommandCenter and implements DeviceLink on its SIP stack. Nothing
// here does I/O or keeps a clock: every send, timer, event and log goes through DeviceLink, and
// every outcome comes back through DeviceLink::on_result. Single-threaded (the plugin's loop).
#pragma once

#include "body.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace junction::gb {

// ---------------------------------------------------------------------------------------------
// PTZ / FI command codes (GB/T 28181 A.3): 8 bytes, sent as 16 upper-case hex digits in <PTZCmd>.
//   byte1 0xA5; byte2 = version (0) << 4 | (byte1 high nibble + byte1 low nibble + version) & 0xF
//   (= 0x0F); byte3 address low 8 bits; byte4 command; byte5/6 data; byte7 = data high nibble <<
//   4 | address high 4 bits; byte8 = sum of bytes 1-7 mod 256.
// Directions (byte4): right 0x01, left 0x02, down 0x04, up 0x08, zoom in 0x10, zoom out 0x20
// (the document's C++ sample; its table repeats the down code for left). Pan speed in byte5, tilt
// speed in byte6, zoom speed (0-15) in byte7's high nibble.
struct PtzCode {
  std::array<uint8_t, 8> b{};
  std::string hex() const;  // "A50F0108 00FA00B7" without the space
};
// Builds a code: checksum and combination code computed. address: 0..4095.
PtzCode make_ptz(uint8_t command, uint8_t data1, uint8_t data2, uint8_t data3_nibble, uint16_t address = 1);
// pan: -1 left, 0, +1 right; tilt: -1 down, 0, +1 up; zoom: -1 out, 0, +1 in. All 0 = stop.
struct PtzMove {
  int pan = 0, tilt = 0, zoom = 0;
  uint8_t pan_speed = 0, tilt_speed = 0, zoom_speed = 0;  // zoom_speed 0..15
};
PtzCode ptz_move(const PtzMove& m, uint16_t address = 1);
PtzCode ptz_stop(uint16_t address = 1);
// FI (byte4 0x40 | bits): iris: +1 open (0x04) / -1 close (0x08); focus: +1 far (0x01) /
// -1 near (0x02). focus_speed in byte5, iris_speed in byte6. All 0 = FI stop (0x40).
PtzCode ptz_fi(int iris, int focus, uint8_t iris_speed, uint8_t focus_speed, uint16_t address = 1);
enum class PresetOp : uint8_t { Set = 0x81, Call = 0x82, Delete = 0x83 };
PtzCode ptz_preset(PresetOp op, uint8_t index, uint16_t address = 1);  // index 1..255
// Cruise: AddPoint/DeletePoint (group, preset; preset 0 on delete = the whole cruise), Speed and
// DwellTime (group, 12-bit value: low 8 bits byte6, high 4 bits byte7), Start (group).
enum class CruiseOp : uint8_t { AddPoint = 0x84, DeletePoint = 0x85, Speed = 0x86, DwellTime = 0x87, Start = 0x88 };
PtzCode ptz_cruise(CruiseOp op, uint8_t group, uint16_t value, uint16_t address = 1);
// Scan (0x89): Start / SetLeft / SetRight (byte6 0/1/2); Speed (0x8A, 12-bit value).
enum class ScanOp : uint8_t { Start = 0, SetLeft = 1, SetRight = 2, Speed = 3 };
PtzCode ptz_scan(ScanOp op, uint8_t group, uint16_t value, uint16_t address = 1);
// Parses 16 hex digits and checks byte1 0xA5, the combination code and the checksum.
bool parse_ptz(std::string_view hex, PtzCode& out, std::string& error);

// ---------------------------------------------------------------------------------------------
enum class QueryKind : uint8_t { Catalog, DeviceInfo, DeviceStatus, RecordInfo, ConfigDownload, PresetQuery, Alarm };
std::string_view query_kind_name(QueryKind k);  // the CmdType
bool parse_query_kind(std::string_view cmd_type, QueryKind& out);

struct QueryParams {
  std::string target_id;   // <DeviceID> of the query (a channel); empty = the device itself
  // RecordInfo and Alarm: GB time "yyyy-MM-ddTHH:mm:ss" (passed through as given)
  std::string start_time, end_time;
  std::string record_type = "all";  // RecordInfo <Type>: all/time/alarm/manual
  std::string file_path, address, recorder_id;
  int secrecy = 0;
  std::string config_type = "BasicParam";  // ConfigDownload <ConfigType> (slash-separated list)
  int start_priority = 0, end_priority = 0, alarm_method = 0;  // Alarm query
  std::string alarm_type;
};

enum class SubKind : uint8_t { Catalog, Alarm };
std::string_view sub_kind_name(SubKind k);  // "Catalog" / "Alarm" (also the body's CmdType)

enum class Outcome : uint8_t {
  Ok,           // complete (a query with all SumNum items, a control acknowledged as asked)
  Partial,      // timed out after some items/responses arrived: data holds what arrived
  Timeout,      // nothing arrived in time
  DeviceError,  // the device answered Result ERROR (reason in error)
  Failed,       // the MESSAGE failed (SIP error / transport), or the link refused to send
};
std::string_view outcome_name(Outcome o);

// Delivered once per started command through DeviceLink::on_result.
struct CommandResult {
  uint64_t tag = 0;        // the caller's tag, as given when starting (kept across a reload)
  std::string device_id;
  std::string cmd;         // "Catalog", "RecordInfo", "DeviceControl", "DeviceConfig", "Subscribe:Catalog", ...
  uint32_t sn = 0;
  Outcome outcome = Outcome::Ok;
  int sip_status = 0;      // final status of our MESSAGE when known
  std::string error;       // human-readable reason for anything but Ok
  // Queries: Catalog {"sum_num","received","items":[{...}]}, RecordInfo {"sum_num","received",
  // "items" sorted by StartTime}, others: the response's fields as an object (nested lists as
  // arrays). Controls with a Response: the Response's fields as they came ({"Result": "OK", ...});
  // commands without a Response: {}.
  nlohmann::json data;
};

// What on_body() wants answered to the MESSAGE/NOTIFY carrying the body.
struct BodyAnswer {
  int status = 200;        // 0 = not a body this layer handles (the plugin decides: e.g. MediaStatus)
  std::string reason;      // for 4xx: why (also logged)
};

enum class LogLevel : uint8_t { Error, Warn, Info, Debug };

// Implemented by the plugin on its SIP stack.
class DeviceLink {
 public:
  virtual ~DeviceLink() = default;
  // Sends a MESSAGE (Content-Type Application/MANSCDP+xml) with body to the device (over its
  // registered flow). msg_id: report the final outcome with CommandCenter::on_message_outcome.
  // False with error when it cannot be sent now (unknown / offline device).
  virtual bool send_message(const std::string& device_id, const std::string& body, uint64_t msg_id,
                            std::string& error) = 0;
  // SUBSCRIBE (expires_s > 0: new or refresh; 0: unsubscribe) for the catalog or alarms of the
  // device; Event header: "Catalog" for SubKind::Catalog, "presence" for SubKind::Alarm (as in
  // the document). Report the outcome with CommandCenter::on_subscribe_outcome. The plugin must
  // not refresh on its own: CommandCenter keeps the schedule.
  virtual bool send_subscribe(const std::string& device_id, SubKind kind, uint32_t expires_s, const std::string& body,
                              std::string& error) = 0;
  // The charset the device wants on what we send (device conf), default GB2312.
  virtual Charset device_charset(const std::string& device_id) = 0;
  // A core event (topic like "alarm/gb/<device>", "gb/catalog/<device>"): payload is JSON.
  virtual void publish(const std::string& topic, const nlohmann::json& payload) = 0;
  virtual uint64_t now_ms() = 0;
  // One timer: arm_timer replaces any armed one; call CommandCenter::on_timer when it fires.
  virtual void arm_timer(uint64_t at_ms) = 0;
  virtual void cancel_timer() = 0;
  virtual void log(LogLevel level, std::string_view msg) = 0;
  // Every started command ends here exactly once.
  virtual void on_result(const CommandResult& result) = 0;
};

struct CenterConfig {
  uint32_t query_timeout_ms = 10000;   // first response due within
  uint32_t query_idle_ms = 5000;       // each response of a multi-MESSAGE set extends the deadline by
  uint32_t query_max_ms = 120000;      // hard cap for one aggregation
  uint32_t control_timeout_ms = 5000;  // commands with a Response; without: the MESSAGE's own outcome
  uint32_t max_pending = 4096;         // whole table
  uint32_t max_pending_per_device = 64;
  uint32_t max_items_per_query = 200000;
  uint32_t max_channels_per_device = 200000;
  uint32_t subscribe_expires_s = 3600;  // default when the caller gives 0
};

// One channel (or civil-code / business-group / virtual-organisation node) of a device's catalog.
struct Channel {
  std::string id;
  std::string name, parent_id, civil_code, business_group_id;
  std::string status;       // "ON" / "OFF" (as reported; ON/OFF events set it)
  bool vlost = false, defect = false;
  uint64_t updated_ms = 0;
  std::map<std::string, std::string> fields;  // every leaf element of the Item as received
};

struct DeviceCatalog {
  std::map<std::string, Channel> channels;
  uint32_t last_sum_num = 0;
  uint64_t updated_ms = 0;
};

struct StartResult {
  bool ok = false;
  uint32_t sn = 0;
  std::string error;
};

// Controls (DeviceControl unless said).
struct HomePosition {
  bool enabled = true;
  int reset_time_s = 60;
  int preset_index = 1;
};
struct BasicParam {  // DeviceConfig <BasicParam>; empty/0 = not sent
  std::string name;
  int expiration = 0, heartbeat_interval = 0, heartbeat_count = 0;
};
struct SnapShotConfig {  // DeviceConfig <SnapShotConfig>
  int snap_num = 1;      // 1..10
  int interval_s = 1;    // >= 1
  std::string upload_url;
  std::string session_id;  // [A-Za-z0-9-]{32,128}
};

class CommandCenter {
 public:
  explicit CommandCenter(DeviceLink& link, CenterConfig cfg = CenterConfig{});
  ~CommandCenter();
  CommandCenter(const CommandCenter&) = delete;
  CommandCenter& operator=(const CommandCenter&) = delete;

  void set_config(const CenterConfig& cfg);  // on reload of the conf

  // --- queries: the result (or a timeout with what arrived) comes through link.on_result(tag)
  StartResult query(const std::string& device_id, QueryKind kind, const QueryParams& params, uint64_t tag);

  // --- controls (target_id: <DeviceID> of the command; empty = the device)
  // Without a Response: Ok when the MESSAGE gets a 2xx.
  StartResult ptz(const std::string& device_id, const std::string& target_id, const PtzCode& code, uint64_t tag);
  StartResult teleboot(const std::string& device_id, uint64_t tag);
  StartResult iframe(const std::string& device_id, const std::string& target_id, uint64_t tag);
  // With a Response (<Result>OK|ERROR</Result>) within control_timeout_ms.
  StartResult guard(const std::string& device_id, const std::string& target_id, bool set, uint64_t tag);
  StartResult alarm_reset(const std::string& device_id, const std::string& target_id, int alarm_method,
                          const std::string& alarm_type, uint64_t tag);
  StartResult record(const std::string& device_id, const std::string& target_id, bool start, uint64_t tag);
  StartResult home_position(const std::string& device_id, const std::string& target_id, const HomePosition& hp,
                            uint64_t tag);
  StartResult config_basic(const std::string& device_id, const std::string& target_id, const BasicParam& p,
                           uint64_t tag);
  StartResult config_snapshot(const std::string& device_id, const std::string& target_id, const SnapShotConfig& s,
                              uint64_t tag);

  // --- subscriptions (expires_s 0 = cfg.subscribe_expires_s). Result: "Subscribe:Catalog" etc.
  // on the first outcome; refreshes are then sent at half the granted time, unsubscribe() ends it.
  StartResult subscribe(const std::string& device_id, SubKind kind, uint32_t expires_s, const QueryParams& params,
                        uint64_t tag);
  void unsubscribe(const std::string& device_id, SubKind kind);
  nlohmann::json subscriptions_json() const;

  // --- from the plugin
  // Every MANSCDP body a device sent us (MESSAGE or NOTIFY), device_id = the sender (From user).
  BodyAnswer on_body(const std::string& device_id, const Body& body);
  // Final SIP status (or 408/503 for a transaction/transport failure) of a send_message.
  void on_message_outcome(uint64_t msg_id, int sip_status);
  // Final status of a send_subscribe; granted_expires_s from the 2xx's Expires.
  void on_subscribe_outcome(const std::string& device_id, SubKind kind, int sip_status, uint32_t granted_expires_s);
  void on_timer();
  // The device was removed (deprovisioned): its catalog, pending commands (ended as Failed) and
  // subscriptions go.
  void forget_device(const std::string& device_id);

  // --- catalog model
  const DeviceCatalog* catalog(const std::string& device_id) const;
  nlohmann::json catalog_json(const std::string& device_id) const;  // {"channels":[...]} sorted by id
  // The tree: civil-code nodes (2/4/6/8-digit prefixes), business groups (type 215), virtual
  // organisations (216), channels under their ParentID / BusinessGroupID / CivilCode.
  nlohmann::json catalog_tree(const std::string& device_id) const;

  size_t pending_count() const;
  nlohmann::json stats_json() const;  // counters: queries, timeouts, partial, bodies refused, ...

  // --- hot reload: every pending command (with its aggregation so far), the catalogs and the
  // subscriptions. restore() re-arms the timer. Versioned JSON ("v": 1).
  std::string save() const;
  bool restore(std::string_view bytes, std::string& error);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace junction::gb
