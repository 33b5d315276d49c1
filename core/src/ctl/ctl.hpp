// `junction ctl`: the admin API's command-line client. Prints tables a person can read, or the
// raw JSON with --json (for scripts); an error is one line on stderr with the HTTP status.
// Exit codes: 0 2xx, 1 an error reply, 2 bad usage or conf, 3 the server is not reachable.
#pragma once

#include <string>
#include <vector>

namespace junction::ctl {

// The usage text of `junction` and `junction ctl`.
const char* usage();

// args: everything after `ctl` except --config FILE (main takes that).
int run(const std::string& conf_path, std::vector<std::string> args);

}  // namespace junction::ctl
