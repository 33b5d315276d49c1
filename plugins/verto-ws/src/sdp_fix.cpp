#include "sdp_fix.hpp"

#include <cstdlib>
#include <map>
#include <vector>

namespace verto {

std::string unique_bundle_pts(const std::string& sdp) {
  std::vector<std::string> lines;
  for (size_t p = 0; p < sdp.size();) {
    size_t e = sdp.find("\r\n", p);
    if (e == std::string::npos) e = sdp.size();
    lines.push_back(sdp.substr(p, e - p));
    p = e + 2;
  }
  std::vector<int> used(128, 0);
  std::map<std::string, std::string> remap;  // in the current m-section
  auto split = [](const std::string& l) {
    std::vector<std::string> f;
    size_t p = 0;
    while (p <= l.size()) {
      size_t e = l.find(' ', p);
      if (e == std::string::npos) e = l.size();
      f.push_back(l.substr(p, e - p));
      p = e + 1;
    }
    return f;
  };
  auto next_free = [&]() {
    for (int pt = 96; pt < 128; ++pt)
      if (!used[pt]) return pt;
    return -1;
  };
  for (auto& l : lines) {
    if (l.rfind("m=", 0) == 0) {
      remap.clear();
      auto f = split(l);
      for (size_t i = 3; i < f.size(); ++i) {
        int pt = std::atoi(f[i].c_str());
        if (f[i].empty() || pt < 0 || pt > 127) continue;
        if (used[pt] && pt >= 96) {
          int n = next_free();
          if (n < 0) continue;
          remap[f[i]] = std::to_string(n);
          f[i] = std::to_string(n);
          pt = n;
        }
        used[pt] = 1;
      }
      l.clear();
      for (size_t i = 0; i < f.size(); ++i) l += (i ? " " : "") + f[i];
      continue;
    }
    for (const char* attr : {"a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"}) {
      std::string a(attr);
      if (l.rfind(a, 0) != 0) continue;
      size_t sp = l.find(' ', a.size());
      std::string pt = l.substr(a.size(), sp == std::string::npos ? std::string::npos : sp - a.size());
      if (auto it = remap.find(pt); it != remap.end()) l = a + it->second + (sp == std::string::npos ? "" : l.substr(sp));
    }
  }
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i + 1 == lines.size() && lines[i].empty()) break;
    out += lines[i] + "\r\n";
  }
  return out;
}


}  // namespace verto
