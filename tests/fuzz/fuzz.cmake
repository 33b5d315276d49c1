# Fuzz targets of the core's own parsers and readers.
# The ordinary builds link them against junction_core (already built for the tests). The fuzz
# build links only the few core sources they reach (junction_core_fuzz), so a cold fuzz build
# compiles a handful of files instead of the whole server; a new target that needs another core
# file adds it here (the link fails until it does).
if(JN_FUZZ)
  set(JN_FUZZ_CORE_SOURCES bus/addr.cpp config/config.cpp routing/route_table.cpp
    routing/call_event_abi.cpp util/log.cpp net/http_response_parser.cpp)
  list(TRANSFORM JN_FUZZ_CORE_SOURCES PREPEND ${CMAKE_SOURCE_DIR}/core/src/)
  add_library(junction_core_fuzz STATIC ${JN_FUZZ_CORE_SOURCES})
  target_include_directories(junction_core_fuzz PUBLIC ${CMAKE_SOURCE_DIR}/core/src)
  target_link_libraries(junction_core_fuzz PUBLIC junction_sdk fmt::fmt tomlplusplus::tomlplusplus
    nlohmann_json::nlohmann_json)
  set(JN_FUZZ_CORE junction_core_fuzz)
else()
  set(JN_FUZZ_CORE junction_core)
endif()

junction_add_fuzz_target(fuzz_framer SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_framer.cpp
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/framer LIBS ${JN_FUZZ_CORE})
junction_add_fuzz_target(fuzz_config SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_config.cpp
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/config LIBS ${JN_FUZZ_CORE})
junction_add_fuzz_target(fuzz_addr SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_addr.cpp
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/addr LIBS ${JN_FUZZ_CORE})
junction_add_fuzz_target(fuzz_call_event_abi SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_call_event_abi.cpp
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/call_event_abi LIBS ${JN_FUZZ_CORE})
junction_add_fuzz_target(fuzz_http_response SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_http_response.cpp
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/http_response LIBS ${JN_FUZZ_CORE})
# Server-side HTTP request handling end to end: a real Server (HttpServer, the lws glue, the admin
# API) on a thread, fed over loopback. It needs the whole core, in the fuzz build too (compiled
# there with coverage, like the subset above).
junction_add_fuzz_target(fuzz_http_request SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_http_request.cpp
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/http_request LIBS junction_core)

# Fuzz targets of the SDK's protocol libraries, one .cmake per library (tests/fuzz/sdk/*.cmake).
file(GLOB JN_SDK_FUZZ_LISTS ${CMAKE_CURRENT_LIST_DIR}/sdk/*.cmake)
foreach(list ${JN_SDK_FUZZ_LISTS})
  include(${list})
endforeach()
