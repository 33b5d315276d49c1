# sdk/rtmp: server bytes into the chunk reader, AMF0 and the Publisher in every state
# (seeds: rtmp_seeds.py).
if(TARGET junction_rtmp)
  junction_add_fuzz_target(fuzz_rtmp_chunk SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_rtmp_chunk.cpp
    CORPUS ${CMAKE_CURRENT_LIST_DIR}/../corpus/rtmp_chunk LIBS junction_rtmp)
  set_target_properties(fuzz_rtmp_chunk PROPERTIES CXX_STANDARD 20)
endif()
