junction_add_fuzz_target(fuzz_framer SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_framer.cpp
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/framer LIBS junction_core)
junction_add_fuzz_target(fuzz_config SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_config.cpp
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/config LIBS junction_core)
junction_add_fuzz_target(fuzz_addr SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_addr.cpp
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/addr LIBS junction_core)
junction_add_fuzz_target(fuzz_http_response SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_http_response.cpp
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/http_response LIBS junction_core)
