// The conference input on any bytes: a verto.broadcast's eventChannel and data (LiveArray
// bootstrap, conf-control, chat, cman.bootstrap) parsed as the plugin does, then the LiveArray
// output built for a room with that input's names must never throw or crash, and always serialise.
#include "conference.hpp"
#include "jsonrpc.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

using verto::json;
namespace la = verto::ws::la;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  verto::Frame f = verto::parse_frame(std::string_view(reinterpret_cast<const char*>(data), size));
  for (auto& m : f.messages) {
    if (m.kind != verto::Message::Request) continue;
    std::string channel = m.params.value("eventChannel", json()).is_string() ? m.params["eventChannel"].get<std::string>() : "";
    json d = m.params.value("data", json());
    std::string kind, room, domain;
    if (la::parse_channel(channel, kind, room, domain)) {
      la::Command c = la::parse_command(kind, d);
      (void)c.why.size();
    }
    std::string name, dom;
    std::string conf = d.is_object() && d.value("conferenceName", json()).is_string() ? d["conferenceName"].get<std::string>() : room;
    std::string dm = d.is_object() && d.value("domain", json()).is_string() ? d["domain"].get<std::string>() : domain;
    if (!la::room_name(conf, dm, name, dom)) continue;
    verto::ws::ConfRoom r;
    r.name = name;
    r.domain = dom;
    verto::ws::ConfMember mb;
    mb.id = static_cast<uint32_t>(size);
    mb.key = channel;
    mb.cid_number = conf;
    mb.cid_name = dm;
    mb.video_codec = size % 2 ? "H264" : "";
    r.members[mb.id] = mb;
    r.order.push_back(mb.id);
    r.floor = mb.id;
    for (const json& j : {la::boot_obj(r), la::boot_obj_objects(r, "n"), la::change(r, mb, "add", 1), la::pvt_data(r, "c", mb.id, true, true),
                          la::layout_info(r)})
      (void)j.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  return 0;
}
