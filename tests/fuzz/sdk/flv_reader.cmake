# sdk/rtmp's FLV reader: HTTP-FLV / .flv bytes into frames (seeds: flv_reader_seeds.py).
if(TARGET junction_rtmp)
  junction_add_fuzz_target(fuzz_flv_reader SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_flv_reader.cpp
    CORPUS ${CMAKE_CURRENT_LIST_DIR}/../corpus/flv_reader LIBS junction_rtmp)
  set_target_properties(fuzz_flv_reader PROPERTIES CXX_STANDARD 20)
endif()
