# Fuzz targets of sdk/webrtc's media side (junction_webrtc): the WebRTC offer/answer layer and
# SCTP input into a data-channel association.
if(TARGET junction_webrtc)
  foreach(t webrtc_sdp webrtc_sctp)
    junction_add_fuzz_target(fuzz_${t} SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_${t}.cpp
      CORPUS ${CMAKE_CURRENT_LIST_DIR}/../corpus/${t} LIBS junction_webrtc)
  endforeach()
endif()
