// call-peer: a scriptable call endpoint for testing the core's routing and call model with real
// plugins. Built twice from this one source (plugin.cmake): call-peer-a owns the URI scheme
// "peera", call-peer-b owns "peerb".
//
// conf/plugins/call-peer-X.toml:
//   on_offer = "answer"   # answer | ring | reject | none: what to do with an incoming OFFER
//                         #   answer: RINGING, then ANSWER with one PCMA/8000 stream at
//                         #           127.0.0.1:(40000 + n), n counting this instance's answers
//   reject_code = 486     # the code of "reject"
//   on_info = "none"      # none | echo: echo answers every INFO received with an INFO on the
//                         #   same leg, from inside on_call (a ping-pong between two echoing legs;
//                         #   the statuses of those sends are counted in `info`)
//   register = ["peerb:dyn/1"]     # dynamic routes added at start (route_add)
//   [on_offer_for]                 # per-target override of on_offer ("peerb:h1" = "none")
//
// Admin commands (POST /api/v1/plugins/NAME/cmd/VERB, JSON in and out):
//   originate {"from","to"[,"cookie"][,"media":false][,"port"]} -> {"status","leg","cookie"}
//         the offer's stream is at 127.0.0.1:port when given, else 30000 + n
//   send {"leg","type":"ringing|answer|reject|end|dtmf|info|offer","code","reason","dtmf",
//         "info_type","info_body"[,"port"][,"media"][,"no_media"]}  -> {"status"}
//         offer/answer carry one PCMA stream (at 127.0.0.1:port when given), unless no_media;
//         ringing carries one (early media) only with "media": true or a port
//   events -> [{"leg","cookie","type","call_id","from","to","target","code","reason","dtmf",
//               "info_type","info_body","media":[...]|null}]   (everything on_call received)
//   clear -> {"cleared": n}        legs -> [{"leg","role","cookie","state","call_id"}]
//   register {"uri"} -> {"status","route"}     unregister {"uri"} -> {"status"}
//   info -> {"name","generation","restored","on_offer","answers","routes",
//            "echo":{"ok","limit","other"}}   (statuses of on_info = "echo" sends)
//
// The event log, the legs, the routes and the counters survive a hot reload (JSON state).
#include <junction/plugin.hpp>

#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef CALL_PEER_NAME
#error "CALL_PEER_NAME must be defined (plugin.cmake)"
#endif
#ifndef CALL_PEER_NAMESPACE
#error "CALL_PEER_NAMESPACE must be defined (plugin.cmake)"
#endif

namespace {

using junction::sdk::Host;
using junction::sdk::to_jn;
using junction::sdk::to_sv;
using nlohmann::json;

const char* type_name(uint32_t t) {
  switch (t) {
    case JN_CALL_OFFER: return "offer";
    case JN_CALL_RINGING: return "ringing";
    case JN_CALL_ANSWER: return "answer";
    case JN_CALL_REJECT: return "reject";
    case JN_CALL_END: return "end";
    case JN_CALL_DTMF: return "dtmf";
    case JN_CALL_INFO: return "info";
    default: return "unknown";
  }
}

uint32_t type_from_name(const std::string& s) {
  if (s == "offer") return JN_CALL_OFFER;
  if (s == "ringing") return JN_CALL_RINGING;
  if (s == "answer") return JN_CALL_ANSWER;
  if (s == "reject") return JN_CALL_REJECT;
  if (s == "end") return JN_CALL_END;
  if (s == "dtmf") return JN_CALL_DTMF;
  if (s == "info") return JN_CALL_INFO;
  return 0;
}

const char* kind_name(uint32_t k) {
  switch (k) {
    case JN_MEDIA_AUDIO: return "audio";
    case JN_MEDIA_VIDEO: return "video";
    case JN_MEDIA_DATA: return "data";
    default: return "unknown";
  }
}

std::string addr_text(const jn_addr& a) {
  if (a.family != 4) return a.family == 0 ? "" : "v6";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%u.%u.%u.%u:%u", a.ip[0], a.ip[1], a.ip[2], a.ip[3], a.port);
  return buf;
}

bool valid_behaviour(const std::string& s) { return s == "answer" || s == "ring" || s == "reject" || s == "none"; }

json media_json(const jn_media_desc* m) {
  if (!m) return nullptr;
  json arr = json::array();
  for (uint32_t i = 0; i < m->count; ++i) {
    const jn_media_stream* s = m->streams[i];
    if (!s) continue;
    arr.push_back({{"kind", kind_name(s->kind)},
                   {"format", std::string(to_sv(s->format))},
                   {"payload_type", s->payload_type},
                   {"clock_rate", s->clock_rate},
                   {"channels", s->channels},
                   {"transport", std::string(to_sv(s->transport))},
                   {"addr", addr_text(s->addr)},
                   {"ssrc", s->ssrc},
                   {"direction", s->direction},
                   {"bus_stream", std::string(to_sv(s->bus_stream))},
                   {"params", std::string(to_sv(s->params))}});
  }
  return arr;
}

// One PCMA/8000 audio stream received at 127.0.0.1:port; the strings are literals (static).
struct OneStream {
  jn_media_stream stream{};
  const jn_media_stream* ptrs[1];
  jn_media_desc desc{};
  explicit OneStream(uint16_t port) {
    stream.struct_size = sizeof stream;
    stream.kind = JN_MEDIA_AUDIO;
    stream.format = to_jn("PCMA");
    stream.payload_type = 8;
    stream.clock_rate = 8000;
    stream.channels = 1;
    stream.transport = to_jn("rtp/avp");
    stream.addr.family = 4;
    stream.addr.port = port;
    stream.addr.ip[0] = 127;
    stream.addr.ip[3] = 1;
    stream.direction = JN_DIR_SENDRECV;
    ptrs[0] = &stream;
    desc.struct_size = sizeof desc;
    desc.count = 1;
    desc.streams = ptrs;
  }
  OneStream(const OneStream&) = delete;
  OneStream& operator=(const OneStream&) = delete;
};

class CallPeer : public junction::sdk::Plugin {
 public:
  CallPeer(Host host, const jn_create_args& args)
      : Plugin(host), generation_(args.generation), restored_(args.restoring != 0) {
    json conf = host.config();
    if (!conf.is_object()) conf = json::object();
    for (auto& [key, value] : conf.items()) {
      if (key == "on_offer") {
        if (!value.is_string() || !valid_behaviour(value.get<std::string>())) {
          host.config_error(key, "must be one of \"answer\", \"ring\", \"reject\", \"none\"");
          throw std::invalid_argument("bad on_offer");
        }
        on_offer_ = value.get<std::string>();
      } else if (key == "reject_code") {
        if (!value.is_number_integer() || value.get<int>() < 300 || value.get<int>() > 699) {
          host.config_error(key, "must be an integer 300..699");
          throw std::invalid_argument("bad reject_code");
        }
        reject_code_ = value.get<int>();
      } else if (key == "on_info") {
        if (!value.is_string() || (value != "none" && value != "echo")) {
          host.config_error(key, "must be \"none\" or \"echo\"");
          throw std::invalid_argument("bad on_info");
        }
        echo_info_ = value == "echo";
      } else if (key == "register") {
        if (!value.is_array()) {
          host.config_error(key, "must be a list of URIs");
          throw std::invalid_argument("bad register");
        }
        for (auto& u : value) {
          if (!u.is_string() || u.get<std::string>().find(':') == std::string::npos) {
            host.config_error(key, "every entry must be a \"scheme:rest\" URI");
            throw std::invalid_argument("bad register entry");
          }
          register_.push_back(u.get<std::string>());
        }
      } else if (key == "on_offer_for") {
        if (!value.is_object()) {
          host.config_error(key, "must be a table of \"target uri\" = behaviour");
          throw std::invalid_argument("bad on_offer_for");
        }
        for (auto& [uri, b] : value.items()) {
          if (!b.is_string() || !valid_behaviour(b.get<std::string>())) {
            host.config_error(key + "." + uri, "must be one of \"answer\", \"ring\", \"reject\", \"none\"");
            throw std::invalid_argument("bad on_offer_for entry");
          }
          on_offer_for_[uri] = b.get<std::string>();
        }
      } else {
        host.config_error(key, "unknown key (on_offer, reject_code, on_info, register, on_offer_for)");
        throw std::invalid_argument("unknown key '" + key + "'");
      }
    }
  }

  jn_status start() override {
    for (const std::string& uri : register_) {
      jn_handle h = JN_INVALID_HANDLE;
      jn_status st = host().route_add(uri, &h);
      if (st != JN_OK) {
        host().set_error("route_add " + uri + " failed with status " + std::to_string(st));
        return st;
      }
      routes_[uri] = h;
    }
    host().info(std::string(CALL_PEER_NAME) + " ready (on_offer " + on_offer_ + ", " + std::to_string(routes_.size()) +
                " route(s))");
    return JN_OK;
  }

  // --- calls --------------------------------------------------------------------------------
  void on_call(jn_handle leg, uint64_t cookie, const jn_call_event& ev) override {
    events_.push_back({{"leg", leg},
                       {"cookie", cookie},
                       {"type", type_name(ev.type)},
                       {"call_id", std::string(to_sv(ev.call_id))},
                       {"from", std::string(to_sv(ev.from))},
                       {"to", std::string(to_sv(ev.to))},
                       {"target", std::string(to_sv(ev.target))},
                       {"code", ev.code},
                       {"reason", std::string(to_sv(ev.reason))},
                       {"dtmf", std::string(to_sv(ev.dtmf))},
                       {"info_type", std::string(to_sv(ev.info_type))},
                       {"info_body", std::string(to_sv(ev.info_body))},
                       {"media", media_json(ev.media)}});

    auto it = legs_.find(leg);
    const bool incoming = ev.type == JN_CALL_OFFER && it == legs_.end();
    if (incoming) {
      uint64_t c = 2000 + ++serial_;
      host().leg_set_cookie(leg, c);
      it = legs_.emplace(leg, json{{"leg", leg}, {"role", "b"}, {"cookie", c}, {"state", "offered"},
                                   {"call_id", std::string(to_sv(ev.call_id))},
                                   {"target", std::string(to_sv(ev.target))}})
               .first;
    } else if (it == legs_.end()) {
      // An event on a leg this instance never heard of: record it so the log shows it.
      it = legs_.emplace(leg, json{{"leg", leg}, {"role", "?"}, {"cookie", cookie}, {"state", "unknown"},
                                   {"call_id", std::string(to_sv(ev.call_id))}})
               .first;
    }
    json& l = it->second;
    if (ev.type == JN_CALL_END || ev.type == JN_CALL_REJECT) l["state"] = "dead";
    else if (ev.type == JN_CALL_ANSWER) l["state"] = "answered";
    else if (ev.type == JN_CALL_RINGING && l["state"] == "offered") l["state"] = "ringing";
    if (ev.call_id.len) l["call_id"] = std::string(to_sv(ev.call_id));

    if (echo_info_ && ev.type == JN_CALL_INFO) {
      jn_call_event echo = Host::event(JN_CALL_INFO);
      echo.info_type = ev.info_type;
      echo.info_body = ev.info_body;
      jn_status st = host().call_send(leg, echo);  // re-entrant: the core queues it
      ++(st == JN_OK ? echo_ok_ : st == JN_ERR_LIMIT ? echo_limit_ : echo_other_);
      return;
    }
    if (!incoming) return;
    std::string behaviour = on_offer_;
    if (auto b = on_offer_for_.find(std::string(to_sv(ev.target))); b != on_offer_for_.end()) behaviour = b->second;
    if (behaviour == "answer") {
      l["ring_status"] = host().call_send(leg, JN_CALL_RINGING);
      l["answer_status"] = answer(leg);
    } else if (behaviour == "ring") {
      l["ring_status"] = host().call_send(leg, JN_CALL_RINGING);
    } else if (behaviour == "reject") {
      l["reject_status"] = host().call_send(leg, JN_CALL_REJECT, reject_code_, "rejected by " CALL_PEER_NAME);
    }
  }

  jn_status answer(jn_handle leg) {
    OneStream m(static_cast<uint16_t>(40000 + answers_++));
    jn_call_event ev = Host::event(JN_CALL_ANSWER);
    ev.media = &m.desc;
    jn_status st = host().call_send(leg, ev);
    note_sent(leg, JN_CALL_ANSWER, st);
    return st;
  }

  void note_sent(jn_handle leg, uint32_t type, jn_status st) {
    if (st != JN_OK) return;
    auto it = legs_.find(leg);
    if (it == legs_.end()) return;
    if (type == JN_CALL_END || type == JN_CALL_REJECT) it->second["state"] = "dead";
    else if (type == JN_CALL_ANSWER) it->second["state"] = "answered";
  }

  // --- admin --------------------------------------------------------------------------------
  void on_admin(const jn_admin_request& req) override {
    std::string verb(to_sv(req.verb));
    std::string_view body_text = to_sv(req.body);
    json body = body_text.empty() ? json::object() : json::parse(body_text, nullptr, false);
    if (body.is_discarded() || !body.is_object()) return reply(req, 400, {{"error", "the body must be a JSON object"}});
    try {
      if (verb == "originate") return originate(req, body);
      if (verb == "send") return send(req, body);
      if (verb == "events") return reply(req, 200, events_);
      if (verb == "clear") {
        size_t n = events_.size();
        events_ = json::array();
        return reply(req, 200, {{"cleared", n}});
      }
      if (verb == "legs") {
        json arr = json::array();
        for (auto& [h, l] : legs_) arr.push_back(l);
        return reply(req, 200, arr);
      }
      if (verb == "register") {
        std::string uri = body.at("uri").get<std::string>();
        jn_handle h = JN_INVALID_HANDLE;
        jn_status st = host().route_add(uri, &h);
        if (st == JN_OK) routes_[uri] = h;
        return reply(req, 200, {{"status", st}, {"route", h}});
      }
      if (verb == "unregister") {
        std::string uri = body.at("uri").get<std::string>();
        auto it = routes_.find(uri);
        if (it == routes_.end()) return reply(req, 200, {{"status", JN_ERR_NOT_FOUND}});
        jn_status st = host().route_remove(it->second);
        routes_.erase(it);
        return reply(req, 200, {{"status", st}});
      }
      if (verb == "info") {
        json routes = json::object();
        for (auto& [uri, h] : routes_) routes[uri] = h;
        return reply(req, 200, {{"name", CALL_PEER_NAME}, {"generation", generation_}, {"restored", restored_},
                                {"on_offer", on_offer_}, {"answers", answers_}, {"routes", routes},
                                {"echo", {{"ok", echo_ok_}, {"limit", echo_limit_}, {"other", echo_other_}}}});
      }
    } catch (const json::exception& e) {
      return reply(req, 400, {{"error", std::string("bad body: ") + e.what()}});
    }
    reply(req, 404, {{"error", "unknown command '" + verb +
                                   "' (originate, send, events, clear, legs, register, unregister, info)"}});
  }

  void originate(const jn_admin_request& req, const json& body) {
    std::string from = body.at("from").get<std::string>();
    std::string to = body.at("to").get<std::string>();
    uint64_t cookie = body.contains("cookie") ? body["cookie"].get<uint64_t>() : 1000 + ++serial_;
    OneStream m(body.contains("port") ? body["port"].get<uint16_t>() : static_cast<uint16_t>(30000 + (serial_ % 10000)));
    jn_call_event ev = Host::event(JN_CALL_OFFER);
    ev.from = to_jn(from);
    ev.to = to_jn(to);
    if (body.value("media", true)) ev.media = &m.desc;
    jn_handle leg = JN_INVALID_HANDLE;
    // Events for the new leg may arrive (and create its entry) before this returns.
    jn_status st = host().call_originate(ev, cookie, &leg);
    if (st == JN_OK && leg != JN_INVALID_HANDLE) {
      auto [it, fresh] = legs_.emplace(leg, json{{"leg", leg}, {"role", "a"}, {"cookie", cookie}, {"state", "offered"}});
      if (!fresh) {  // events arrived synchronously and created an entry: fix its role
        it->second["role"] = "a";
        it->second["cookie"] = cookie;
      }
    }
    reply(req, 200, {{"status", st}, {"leg", leg}, {"cookie", cookie}});
  }

  void send(const jn_admin_request& req, const json& body) {
    jn_handle leg = body.at("leg").get<uint64_t>();
    std::string type_s = body.at("type").get<std::string>();
    uint32_t type = type_from_name(type_s);
    if (type == 0) return reply(req, 400, {{"error", "unknown type '" + type_s + "'"}});
    if (type == JN_CALL_ANSWER && !body.value("no_media", false) && !body.contains("port"))
      return reply(req, 200, {{"status", answer(leg)}});
    std::string reason = body.value("reason", std::string());
    std::string dtmf = body.value("dtmf", std::string());
    std::string info_type = body.value("info_type", std::string());
    std::string info_body;
    if (body.contains("info_body"))
      info_body = body["info_body"].is_string() ? body["info_body"].get<std::string>() : body["info_body"].dump();
    OneStream m(body.contains("port") ? body["port"].get<uint16_t>() : static_cast<uint16_t>(40000 + answers_));
    jn_call_event ev = Host::event(type);
    ev.code = body.value("code", 0);
    ev.reason = to_jn(reason);
    ev.dtmf = to_jn(dtmf);
    ev.info_type = to_jn(info_type);
    ev.info_body = to_jn(info_body);
    const bool sdp = type == JN_CALL_OFFER || type == JN_CALL_ANSWER;
    if (sdp ? !body.value("no_media", false) : type == JN_CALL_RINGING && (body.value("media", false) || body.contains("port")))
      ev.media = &m.desc;
    jn_status st = host().call_send(leg, ev);
    note_sent(leg, type, st);
    reply(req, 200, {{"status", st}});
  }

  void reply(const jn_admin_request& req, int status, const json& j) { host().admin_reply(req.reply, status, j.dump()); }

  // --- hot reload -------------------------------------------------------------------------------
  jn_status save_state(std::string& out) override {
    json legs = json::array();
    for (auto& [h, l] : legs_) legs.push_back(l);
    json routes = json::array();
    for (auto& [uri, h] : routes_) routes.push_back({{"uri", uri}, {"route", h}});
    out = json{{"events", events_}, {"legs", legs}, {"routes", routes}, {"serial", serial_}, {"answers", answers_}}.dump();
    return JN_OK;
  }

  jn_status restore_state(uint32_t schema, std::string_view data) override {
    if (schema != 1) return JN_ERR_ABI;
    json s = json::parse(data, nullptr, false);
    if (s.is_discarded() || !s.is_object()) {
      host().set_error("state is not a JSON object");
      return JN_ERR_INVALID;
    }
    events_ = s.at("events");
    for (auto& l : s.at("legs")) legs_[l.at("leg").get<uint64_t>()] = l;
    for (auto& r : s.at("routes")) routes_[r.at("uri").get<std::string>()] = r.at("route").get<uint64_t>();
    serial_ = s.at("serial");
    answers_ = s.at("answers");
    return JN_OK;
  }

 private:
  uint64_t generation_ = 0;
  bool restored_ = false;
  std::string on_offer_ = "answer";
  int reject_code_ = 486;
  std::vector<std::string> register_;
  std::map<std::string, std::string> on_offer_for_;
  bool echo_info_ = false;
  uint64_t echo_ok_ = 0, echo_limit_ = 0, echo_other_ = 0;

  json events_ = json::array();
  std::map<jn_handle, json> legs_;
  std::map<std::string, jn_handle> routes_;
  uint64_t serial_ = 0;
  uint32_t answers_ = 0;
};

}  // namespace

JUNCTION_PLUGIN(CallPeer, CALL_PEER_NAME, "1.0.0", "Scriptable call endpoint for routing tests", CALL_PEER_NAMESPACE, 1, 1)
