// The Date of a REGISTER's 200 OK (校时): the GB form "yyyy-MM-ddTHH:mm:ss.SSS" (no zone: the
// wall clock of the deployment, conf date_utc_offset_min) or the RFC 3261 form (GMT).
#pragma once

#include <cstdint>
#include <string>

namespace gb {

std::string gb_date(int64_t unix_ms, int32_t utc_offset_min);
std::string rfc_date(int64_t unix_ms);
// Wall clock (the one thing a Date needs that the host's monotonic clock cannot give).
int64_t wall_ms();

}  // namespace gb
