# sdk/media RTP depacketizers and the reorder buffer: one target each from fuzz_media_rtp.cpp.
if(TARGET junction_media)
  foreach(pair "h264;1" "h265;2" "aac;3" "audio;4" "reorder;5")
    list(GET pair 0 jn_rtp_name)
    list(GET pair 1 jn_rtp_kind)
    junction_add_fuzz_target(fuzz_rtp_${jn_rtp_name} SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_media_rtp.cpp
      CORPUS ${CMAKE_CURRENT_LIST_DIR}/../corpus/rtp_${jn_rtp_name} LIBS junction_media)
    target_compile_definitions(fuzz_rtp_${jn_rtp_name} PRIVATE JN_FUZZ_RTP=${jn_rtp_kind})
    set_target_properties(fuzz_rtp_${jn_rtp_name} PROPERTIES CXX_STANDARD 20)
  endforeach()
endif()
